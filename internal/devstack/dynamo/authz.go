package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/groupcast/groupcast/internal/devstack/iam"
)

// Authenticator verifies a request's SigV4 signature and returns its
// caller (the local stack's iam.Registry).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, body []byte, service string) (*iam.Principal, error)
}

// authenticate answers a request that fails authentication as DynamoDB
// does: HTTP 400 with the error type in __type.
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
func (s *Server) authenticate(r *http.Request, body []byte) (*iam.Principal, *apiError) {
	p, err := s.opts.Auth.Authenticate(r.Context(), r, body, "dynamodb")
	if err == nil {
		return p, nil
	}
	var ae *iam.AuthError
	if !errors.As(err, &ae) {
		s.log.Error("dynamo: authenticate", "err", err)
		return nil, &apiError{http.StatusInternalServerError, "InternalServerError", "internal error"}
	}
	switch ae.Kind {
	case iam.MissingToken:
		return nil, &apiError{http.StatusBadRequest, "MissingAuthenticationTokenException", "Request is missing Authentication Token"}
	case iam.UnrecognizedClient:
		return nil, &apiError{http.StatusBadRequest, "UnrecognizedClientException", ae.Message}
	}
	return nil, &apiError{http.StatusBadRequest, "InvalidSignatureException", ae.Message}
}

// accessDenied is DynamoDB's answer to a call no policy allows: HTTP 400,
// __type com.amazon.coral.service#AccessDeniedException.
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html
func writeAccessDenied(w http.ResponseWriter, err error) {
	body, _ := json.Marshal(map[string]string{"__type": "com.amazon.coral.service#AccessDeniedException", "Message": err.Error()})
	writeJSON(w, http.StatusBadRequest, body)
}

// permission is one IAM action on one resource that a call needs.
type permission struct{ action, resource string }

// authorize checks every permission a call needs, in a stable order, and
// returns the first denial; aerr reports a request it could not map.
func (s *Server) authorize(p *iam.Principal, target string, body []byte) (aerr *apiError, denied error) {
	perms, aerr := s.permissions(target, body)
	if aerr != nil {
		return aerr, nil
	}
	for _, pm := range perms {
		if err := p.Authorize(pm.action, pm.resource); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// permissions maps a DynamoDB or DynamoDB Streams call to the IAM actions
// and resources it needs, per the Service Authorization Reference
// (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html):
// item and table calls act on the table ARN, Query and Scan of an index on
// table/T/index/I, Streams calls on the stream ARN, and a transaction needs
// no action of its own but each contained operation's.
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
func (s *Server) permissions(target string, body []byte) ([]permission, *apiError) {
	var in struct {
		TableName          string
		IndexName          string
		StreamArn          string
		ShardIterator      string
		Statement          string
		RequestItems       map[string]json.RawMessage
		TransactItems      []map[string]struct{ TableName string }
		Statements         []struct{ Statement string }
		TransactStatements []struct{ Statement string }
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, &apiError{http.StatusBadRequest, "SerializationException", "the request body is not valid JSON for this operation"}
		}
	}
	if op, ok := strings.CutPrefix(target, streamsPrefix); ok {
		action := "dynamodb:" + op
		switch op {
		case "ListStreams":
			if in.TableName != "" {
				return []permission{{action, s.tableARN(in.TableName) + "/stream/*"}}, nil
			}
			return []permission{{action, "*"}}, nil
		case "GetRecords":
			it, aerr := decodeIterator(in.ShardIterator)
			if aerr != nil {
				return nil, aerr
			}
			return []permission{{action, it.Stream}}, nil
		}
		return []permission{{action, in.StreamArn}}, nil
	}
	op := strings.TrimPrefix(target, dynamoPrefix)
	action := "dynamodb:" + op
	switch op {
	case "ListTables", "DescribeLimits", "DescribeEndpoints":
		return []permission{{action, "*"}}, nil
	case "Query", "Scan":
		res := s.tableARN(in.TableName)
		if in.IndexName != "" {
			res += "/index/" + in.IndexName
		}
		return []permission{{action, res}}, nil
	case "BatchGetItem", "BatchWriteItem":
		tables := make([]string, 0, len(in.RequestItems))
		for t := range in.RequestItems {
			tables = append(tables, t)
		}
		sort.Strings(tables)
		perms := make([]permission, 0, len(tables))
		for _, t := range tables {
			perms = append(perms, permission{action, s.tableARN(t)})
		}
		return perms, nil
	case "TransactWriteItems", "TransactGetItems":
		actions := map[string]string{"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
			"ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem"}
		var perms []permission
		for _, ti := range in.TransactItems {
			for kind, x := range ti {
				a, ok := actions[kind]
				if !ok {
					return nil, errValidation("unknown transaction operation %q", kind)
				}
				perms = append(perms, permission{a, s.tableARN(x.TableName)})
			}
		}
		return perms, nil
	case "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction":
		// The proxy serves only SELECT (requireReadOnlyPartiQL), which
		// needs dynamodb:PartiQLSelect on the table it reads.
		stmts := []string{in.Statement}
		for _, st := range append(in.Statements, in.TransactStatements...) {
			stmts = append(stmts, st.Statement)
		}
		var perms []permission
		for _, st := range stmts {
			if st != "" {
				perms = append(perms, permission{"dynamodb:PartiQLSelect", s.partiQLResource(st)})
			}
		}
		return perms, nil
	}
	return []permission{{action, s.tableARN(in.TableName)}}, nil
}

// tableARN is the ARN policies name a table by; TableName may already be one.
func (s *Server) tableARN(name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.opts.Region, s.opts.AccountID, name)
}

// partiQLFrom finds the table (and index) of a SELECT: FROM "T" or FROM "T"."I".
var partiQLFrom = regexp.MustCompile(`(?i)\bFROM\s+"([^"]+)"(?:\."([^"]+)")?`)

func (s *Server) partiQLResource(stmt string) string {
	m := partiQLFrom.FindStringSubmatch(stmt)
	if m == nil {
		return "*"
	}
	res := s.tableARN(m[1])
	if m[2] != "" {
		res += "/index/" + m[2]
	}
	return res
}
