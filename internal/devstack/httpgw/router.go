package httpgw

import (
	"fmt"
	"net/url"
	"strings"
)

// segment kinds, in the order API Gateway prefers them when several routes
// match: a literal segment beats a path variable, which beats a greedy one.
const (
	segLiteral = iota
	segParam
	segGreedy
)

type segment struct {
	kind int
	text string // literal text or variable name
}

type compiledRoute struct {
	Route
	segments  []segment
	anyMethod bool
}

type router struct {
	routes       []compiledRoute
	defaultRoute *Route
}

func newRouter(routes []Route) (*router, error) {
	rt := &router{}
	seen := map[string]bool{}
	for _, r := range routes {
		key := r.Key()
		if seen[key] {
			return nil, fmt.Errorf("duplicate route %q", key)
		}
		seen[key] = true
		if key == DefaultRouteKey {
			r := r
			rt.defaultRoute = &r
			continue
		}
		cr, err := compileRoute(r)
		if err != nil {
			return nil, err
		}
		rt.routes = append(rt.routes, cr)
	}
	return rt, nil
}

func compileRoute(r Route) (compiledRoute, error) {
	if r.Method == "" {
		return compiledRoute{}, fmt.Errorf("route %q: empty method", r.Path)
	}
	if !strings.HasPrefix(r.Path, "/") {
		return compiledRoute{}, fmt.Errorf("route %q: path must start with '/'", r.Key())
	}
	cr := compiledRoute{Route: r, anyMethod: strings.EqualFold(r.Method, "ANY")}
	if r.Path == "/" {
		return cr, nil
	}
	parts := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}"):
			if i != len(parts)-1 {
				return compiledRoute{}, fmt.Errorf("route %q: greedy variable must be the last segment", r.Key())
			}
			cr.segments = append(cr.segments, segment{kind: segGreedy, text: p[1 : len(p)-2]})
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			cr.segments = append(cr.segments, segment{kind: segParam, text: p[1 : len(p)-1]})
		case p == "" || strings.ContainsAny(p, "{}"):
			return compiledRoute{}, fmt.Errorf("route %q: bad segment %q", r.Key(), p)
		default:
			cr.segments = append(cr.segments, segment{kind: segLiteral, text: p})
		}
	}
	return cr, nil
}

// match finds the route for method and path (the path without the stage
// prefix), preferring, as API Gateway does, the most specific path and then
// an exact method over ANY; $default catches the rest.
func (rt *router) match(method, path string) (Route, map[string]string, bool) {
	var (
		best       *compiledRoute
		bestParams map[string]string
	)
	for i := range rt.routes {
		cr := &rt.routes[i]
		if !cr.anyMethod && !strings.EqualFold(cr.Method, method) {
			continue
		}
		params, ok := cr.matchPath(path)
		if !ok {
			continue
		}
		if best == nil || cr.moreSpecificThan(best) {
			best, bestParams = cr, params
		}
	}
	if best != nil {
		return best.Route, bestParams, true
	}
	if rt.defaultRoute != nil {
		return *rt.defaultRoute, nil, true
	}
	return Route{}, nil, false
}

func (cr *compiledRoute) matchPath(path string) (map[string]string, bool) {
	rest := strings.TrimPrefix(path, "/")
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	if len(cr.segments) == 0 {
		return nil, rest == ""
	}
	for i, s := range cr.segments {
		if s.kind == segGreedy {
			// A greedy variable needs at least one character: /files/{proxy+}
			// does not match /files or /files/.
			if rest == "" {
				return nil, false
			}
			set(s.text, unescape(rest))
			return params, true
		}
		part, tail, found := strings.Cut(rest, "/")
		if part == "" {
			return nil, false
		}
		if s.kind == segLiteral && part != s.text {
			return nil, false
		}
		if s.kind == segParam {
			set(s.text, unescape(part))
		}
		last := i == len(cr.segments)-1
		if last {
			return params, !found
		}
		if !found {
			return nil, false
		}
		rest = tail
	}
	return nil, false
}

// moreSpecificThan compares segment by segment (literal < param < greedy),
// then a longer path wins, then an exact method beats ANY.
func (cr *compiledRoute) moreSpecificThan(o *compiledRoute) bool {
	for i := 0; i < len(cr.segments) && i < len(o.segments); i++ {
		if cr.segments[i].kind != o.segments[i].kind {
			return cr.segments[i].kind < o.segments[i].kind
		}
	}
	if len(cr.segments) != len(o.segments) {
		return len(cr.segments) > len(o.segments)
	}
	return !cr.anyMethod && o.anyMethod
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
