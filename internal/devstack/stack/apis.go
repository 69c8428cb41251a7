package stack

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/groupcast/groupcast/internal/cfn"
	"github.com/groupcast/groupcast/internal/devstack/httpgw"
	"github.com/groupcast/groupcast/internal/devstack/wsgw"
)

// implicitHTTPAPI is the logical id SAM gives the HTTP API it creates for
// HttpApi events that name no ApiId.
const implicitHTTPAPI = "ServerlessHttpApi"

// httpAPI is one HTTP API with the routes its functions' events declare.
type httpAPI struct {
	ID     string
	Config httpgw.Config
	// jwt lists the JWT authorizers; the stack adds their verifiers.
	jwt []jwtAuthorizer

	defaultAuthorizer string
}

type jwtAuthorizer struct {
	Name, IdentitySource, Issuer string
	Audience                     []string
}

// httpAPIs collects the AWS::Serverless::HttpApi resources and the HttpApi
// events of every function.
func httpAPIs(ctx *cfn.Context, r *resolver, fns []function) (map[string]*httpAPI, error) {
	t := ctx.Template()
	apis := map[string]*httpAPI{}
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		if t.Resources[id].Type != "AWS::Serverless::HttpApi" {
			continue
		}
		if on, _ := ctx.Enabled(id); !on {
			continue
		}
		props, err := ctx.Properties(id)
		if err != nil {
			return nil, err
		}
		api, err := httpAPIPlan(id, r, props)
		if err != nil {
			return nil, err
		}
		apis[id] = api
	}
	defaultAuth := map[string]string{}
	for id, api := range apis {
		defaultAuth[id] = api.defaultAuthorizer
	}
	for _, f := range fns {
		for _, evName := range slices.Sorted(maps.Keys(f.Events)) {
			ev, _ := f.Events[evName].(map[string]any)
			if ev["Type"] != "HttpApi" {
				continue
			}
			props, _ := ev["Properties"].(map[string]any)
			apiID := implicitHTTPAPI
			if ref, ok := props["ApiId"].(string); ok && ref != "" {
				apiID = apiLogicalID(r, ref)
			}
			api := apis[apiID]
			if api == nil {
				if apiID != implicitHTTPAPI {
					return nil, fmt.Errorf("function %s event %s: ApiId names no HttpApi in the template", f.ID, evName)
				}
				api = &httpAPI{ID: apiID, Config: httpgw.Config{Stage: httpgw.DefaultStage}}
				r.apiIDs[apiID] = localID(apiID)
				apis[apiID] = api
			}
			method, _ := props["Method"].(string)
			path, _ := props["Path"].(string)
			if method == "" || path == "" {
				method, path = "ANY", httpgw.DefaultRouteKey
			}
			route := httpgw.Route{Method: strings.ToUpper(method), Path: path, Function: f.ID, Authorizer: api.defaultAuthorizer}
			if auth, ok := props["Auth"].(map[string]any); ok {
				if name, ok := auth["Authorizer"].(string); ok {
					route.Authorizer = name
					if name == "NONE" {
						route.Authorizer = ""
					}
				}
			}
			api.Config.Routes = append(api.Config.Routes, route)
		}
	}
	return apis, nil
}

// apiLogicalID maps a resolved ApiId (the local API id) back to its resource.
func apiLogicalID(r *resolver, apiID string) string {
	for id, v := range r.apiIDs {
		if v == apiID {
			return id
		}
	}
	return apiID
}

func httpAPIPlan(id string, r *resolver, props map[string]any) (*httpAPI, error) {
	api := &httpAPI{ID: id, Config: httpgw.Config{APIID: r.apiIDs[id], Region: r.region, AccountID: r.account, Stage: httpgw.DefaultStage}}
	if s, ok := props["StageName"].(string); ok && s != "" {
		api.Config.Stage = s
	}
	if auth, ok := props["Auth"].(map[string]any); ok {
		api.defaultAuthorizer, _ = auth["DefaultAuthorizer"].(string)
		authorizers, _ := auth["Authorizers"].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(authorizers)) {
			a, _ := authorizers[name].(map[string]any)
			jc, ok := a["JwtConfiguration"].(map[string]any)
			if !ok {
				return nil, fmt.Errorf("HttpApi %s: authorizer %s: only JWT authorizers are supported locally", id, name)
			}
			ja := jwtAuthorizer{Name: name, Audience: stringList(jc["audience"])}
			ja.Issuer, _ = jc["issuer"].(string)
			ja.IdentitySource, _ = a["IdentitySource"].(string)
			if ja.Issuer == "" {
				return nil, fmt.Errorf("HttpApi %s: authorizer %s: JwtConfiguration.issuer is empty", id, name)
			}
			api.jwt = append(api.jwt, ja)
		}
	}
	if cors, ok := props["CorsConfiguration"].(map[string]any); ok {
		c := &httpgw.CORS{
			AllowOrigins:     stringList(cors["AllowOrigins"]),
			AllowMethods:     stringList(cors["AllowMethods"]),
			AllowHeaders:     stringList(cors["AllowHeaders"]),
			ExposeHeaders:    stringList(cors["ExposeHeaders"]),
			AllowCredentials: truthy(cors["AllowCredentials"]),
		}
		if v, ok := number(cors["MaxAge"]); ok {
			c.MaxAge = time.Duration(v) * time.Second
		}
		api.Config.CORS = c
	} else if truthy(props["CorsConfiguration"]) {
		api.Config.CORS = &httpgw.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}
	}
	return api, nil
}

// wsAPI is one WebSocket API built from ApiGatewayV2 resources.
type wsAPI struct {
	ID     string
	Config wsgw.Config
}

// wsAPIs assembles each WEBSOCKET AWS::ApiGatewayV2::Api from its routes,
// integrations, route responses, authorizer and stage.
func wsAPIs(ctx *cfn.Context, r *resolver) (map[string]*wsAPI, error) {
	t := ctx.Template()
	byType := map[string][]string{}
	props := map[string]map[string]any{}
	for _, id := range slices.Sorted(maps.Keys(t.Resources)) {
		if on, _ := ctx.Enabled(id); !on {
			continue
		}
		typ := t.Resources[id].Type
		if !strings.HasPrefix(typ, "AWS::ApiGatewayV2::") {
			continue
		}
		p, err := ctx.Properties(id)
		if err != nil {
			return nil, err
		}
		props[id] = p
		byType[typ] = append(byType[typ], id)
	}
	apis := map[string]*wsAPI{}
	for _, id := range byType["AWS::ApiGatewayV2::Api"] {
		p := props[id]
		if p["ProtocolType"] != "WEBSOCKET" {
			return nil, fmt.Errorf("resource %s: only WEBSOCKET ApiGatewayV2 APIs are supported (use AWS::Serverless::HttpApi for HTTP)", id)
		}
		rse, _ := p["RouteSelectionExpression"].(string)
		apis[id] = &wsAPI{ID: id, Config: wsgw.Config{
			APIID: r.apiIDs[id], Region: r.region, AccountID: r.account,
			RouteSelectionExpression: rse, Routes: map[string]wsgw.Route{},
		}}
	}
	owner := func(res string) (*wsAPI, error) {
		api := apis[apiLogicalID(r, fmt.Sprint(props[res]["ApiId"]))]
		if api == nil {
			return nil, fmt.Errorf("resource %s: ApiId names no WebSocket API in the template", res)
		}
		return api, nil
	}
	// Integrations and authorizers resolve to functions through their URIs.
	integrationFn := map[string]string{}
	for _, id := range byType["AWS::ApiGatewayV2::Integration"] {
		uri, _ := props[id]["IntegrationUri"].(string)
		fn, ok := r.functionByARN(uri)
		if !ok {
			return nil, fmt.Errorf("integration %s: IntegrationUri %q names no function of the template", id, uri)
		}
		integrationFn[id] = fn
	}
	twoWay := map[string]bool{}
	for _, id := range byType["AWS::ApiGatewayV2::RouteResponse"] {
		twoWay[fmt.Sprint(props[id]["RouteId"])] = true
	}
	for _, id := range byType["AWS::ApiGatewayV2::Authorizer"] {
		api, err := owner(id)
		if err != nil {
			return nil, err
		}
		p := props[id]
		if p["AuthorizerType"] != "REQUEST" {
			return nil, fmt.Errorf("authorizer %s: only REQUEST authorizers exist for WebSocket APIs", id)
		}
		uri, _ := p["AuthorizerUri"].(string)
		fn, ok := r.functionByARN(uri)
		if !ok {
			return nil, fmt.Errorf("authorizer %s: AuthorizerUri %q names no function of the template", id, uri)
		}
		auth := &wsgw.Authorizer{Function: fn, IdentitySources: stringList(p["IdentitySource"])}
		// The authorizer applies to the route that names it ($connect).
		for _, rid := range byType["AWS::ApiGatewayV2::Route"] {
			if props[rid]["AuthorizerId"] == id && props[rid]["AuthorizationType"] == "CUSTOM" {
				api.Config.Authorizer = auth
			}
		}
	}
	for _, id := range byType["AWS::ApiGatewayV2::Route"] {
		api, err := owner(id)
		if err != nil {
			return nil, err
		}
		p := props[id]
		key, _ := p["RouteKey"].(string)
		target, _ := p["Target"].(string)
		integration, ok := strings.CutPrefix(target, "integrations/")
		if !ok || integrationFn[integration] == "" {
			return nil, fmt.Errorf("route %s (%s): Target %q names no Lambda integration of the template", id, key, target)
		}
		api.Config.Routes[key] = wsgw.Route{Function: integrationFn[integration], TwoWay: twoWay[id]}
	}
	for _, id := range byType["AWS::ApiGatewayV2::Stage"] {
		api, err := owner(id)
		if err != nil {
			return nil, err
		}
		api.Config.Stage, _ = props[id]["StageName"].(string)
	}
	for id, api := range apis {
		if api.Config.Stage == "" {
			return nil, fmt.Errorf("WebSocket API %s has no AWS::ApiGatewayV2::Stage", id)
		}
	}
	return apis, nil
}
