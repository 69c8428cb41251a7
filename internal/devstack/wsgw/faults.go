package wsgw

import (
	"fmt"
	"net/http"
)

// PushFaultParam is the $connect query parameter that, when the gateway's
// Config.PushFaults is on, makes every @connections POST to the new
// connection fail with the status it names: "500" or "410". Load tests use
// it to measure how a permanently failing subscriber affects the others.
// The gateway consumes it: functions never see it in the $connect or
// authorizer event. With PushFaults off it is an ordinary query parameter.
const PushFaultParam = "devstack-push-fault"

// takePushFault reads and removes PushFaultParam from the handshake's
// query. A value other than 500 or 410 is an error.
func (hs *handshake) takePushFault() error {
	vals, ok := hs.multiQuery[PushFaultParam]
	if !ok {
		return nil
	}
	v := vals[len(vals)-1]
	switch v {
	case "500":
		hs.pushFault = http.StatusInternalServerError
	case "410":
		hs.pushFault = http.StatusGone
	default:
		return fmt.Errorf("%s must be 500 or 410, got %q", PushFaultParam, v)
	}
	delete(hs.multiQuery, PushFaultParam)
	delete(hs.query, PushFaultParam)
	// API Gateway sends null, not {}, for a handshake without a query.
	if len(hs.query) == 0 {
		hs.query, hs.multiQuery = nil, nil
	}
	return nil
}

// writePushFault answers an injected fault as API Gateway answers the real
// failure. 410 is the GoneException of a connection that no longer exists,
// as connectionFor sends it. 500 has no modelled error in the management
// API (its SDK model declares only Forbidden, Gone, LimitExceeded and
// PayloadTooLarge:
// https://docs.aws.amazon.com/AWSJavaSDK/latest/javadoc/com/amazonaws/services/apigatewaymanagementapi/model/package-summary.html),
// so it is API Gateway's default 5XX response, {"message":"Internal server
// error"} (https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html),
// with the error type the SDKs report for it.
func writePushFault(w http.ResponseWriter, status int) {
	if status == http.StatusGone {
		writeAPIError(w, http.StatusGone, "GoneException", "")
		return
	}
	writeAPIError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
}

// FaultedPosts counts the @connections POSTs answered with an injected
// fault so far.
func (g *Gateway) FaultedPosts() int64 { return g.faulted.Load() }
