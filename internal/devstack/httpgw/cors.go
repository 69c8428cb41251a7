package httpgw

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// isPreflight reports whether r is a CORS preflight request. API Gateway
// answers these itself when CORS is configured, without routing or
// authorizing them.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions &&
		r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

func (c *CORS) allowsOrigin(origin string) bool {
	if origin == "" {
		return false
	}
	return slices.Contains(c.AllowOrigins, "*") || slices.ContainsFunc(c.AllowOrigins, func(o string) bool {
		return strings.EqualFold(o, origin)
	})
}

// allowOriginValue is "*" for a wildcard configuration without credentials,
// and the request's origin otherwise (browsers reject "*" with credentials).
func (c *CORS) allowOriginValue(origin string) string {
	if slices.Contains(c.AllowOrigins, "*") && !c.AllowCredentials {
		return "*"
	}
	return origin
}

// writePreflight answers a preflight with 204: CORS headers when the origin
// is allowed, none otherwise (the browser then blocks the request).
func (c *CORS) writePreflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	h := w.Header()
	if c.allowsOrigin(origin) {
		h.Set("Access-Control-Allow-Origin", c.allowOriginValue(origin))
		if len(c.AllowMethods) > 0 {
			h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
		}
		if len(c.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
		}
		if len(c.ExposeHeaders) > 0 {
			h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
		}
		if c.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge.Seconds())))
		}
		if c.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		h.Add("Vary", "Origin")
	}
	w.WriteHeader(http.StatusNoContent)
}

// addResponseHeaders adds the CORS headers of an actual (non-preflight)
// response from an allowed origin.
func (c *CORS) addResponseHeaders(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if !c.allowsOrigin(origin) {
		return
	}
	h.Set("Access-Control-Allow-Origin", c.allowOriginValue(origin))
	if len(c.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
	}
	if c.AllowCredentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Add("Vary", "Origin")
}
