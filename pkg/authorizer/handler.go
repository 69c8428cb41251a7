package authorizer

import (
	"context"
	"errors"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/identity"
)

// ErrAPIGatewayUnauthorized is the exact error API Gateway turns into a 401
// for a Lambda authorizer; any other error becomes a 500.
var ErrAPIGatewayUnauthorized = errors.New("Unauthorized")

// TokenVerifier is what the handler needs from a Verifier.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (identity.Caller, error)
}

// Handler is the WebSocket $connect REQUEST authorizer.
type Handler struct {
	verifier TokenVerifier
	log      *slog.Logger
}

// NewHandler returns the authorizer handler.
func NewHandler(v TokenVerifier, log *slog.Logger) (*Handler, error) {
	if v == nil || log == nil {
		return nil, errors.New("authorizer: NewHandler needs a verifier and a logger")
	}
	return &Handler{verifier: v, log: log}, nil
}

// Handle verifies the token and allows execute-api:Invoke on the event's
// methodArn (for WebSocket APIs arn:…:{apiId}/{stage}/$connect). The policy
// names only this method ARN, so a cached policy never grants more.
// WebSocket authorizer events have the REQUEST authorizer shape (methodArn,
// headers, queryStringParameters); requestContext fields we don't use
// differ from REST's and are ignored.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	id, err := h.verifier.Verify(ctx, tokenFrom(req))
	if err != nil {
		h.log.InfoContext(ctx, "connection rejected", "reason", err.Error(), "sourceIp", req.RequestContext.Identity.SourceIP)
		return events.APIGatewayCustomAuthorizerResponse{}, ErrAPIGatewayUnauthorized
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: id.UserID,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action:   []string{"execute-api:Invoke"},
				Effect:   "Allow",
				Resource: []string{req.MethodArn},
			}},
		},
		// Context values must be strings, numbers or booleans; $connect
		// reads them as requestContext.authorizer.userId / displayName.
		Context: map[string]any{"userId": id.UserID, "displayName": id.DisplayName},
	}, nil
}

// TokenQueryParameter carries the token. It is the authorizer's only
// identity source (template.yaml: route.request.querystring.token): browsers
// cannot set headers on a WebSocket handshake, and API Gateway refuses a
// $connect missing any declared identity source with 401 before calling the
// authorizer, so a header source would lock browsers out and a header-only
// client never reaches this code.
// https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-authorizers.html (IdentitySource)
const TokenQueryParameter = "token"

func tokenFrom(req events.APIGatewayCustomAuthorizerRequestTypeRequest) string {
	return req.QueryStringParameters[TokenQueryParameter]
}
