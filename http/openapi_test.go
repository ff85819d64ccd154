package http_test

import (
	"context"
	"encoding/json"
	"io"
	nethttp "net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	apihttp "github.com/ctibridge/ctibridge/http"
	"github.com/getkin/kin-openapi/openapi3"
)

// The OpenAPI document and the router agree: every route is documented and
// every documented operation is routed; every $ref resolves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	srv := apihttp.NewServer(nil, nil, nil)
	res, err := srv.App().Test(nethttp.NewRequest("GET", "/v1/openapi.json", nil))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json: %v %v", res, err)
	}
	raw, _ := io.ReadAll(res.Body)
	var doc struct {
		Paths map[string]map[string]struct {
			Security    []map[string][]string `json:"security"`
			Scope       string                `json:"x-scope"`
			Responses   map[string]any        `json:"responses"`
			RequestBody any                   `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:([A-Za-z]+)`)
	routed := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == "HEAD" {
			continue // fiber adds HEAD to every GET
		}
		key := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		routed[key] = true
		ops, ok := doc.Paths[param.ReplaceAllString(r.Path, "{$1}")]
		if !ok || ops[strings.ToLower(r.Method)].Responses == nil {
			t.Errorf("%s is routed but not documented", key)
		}
	}
	public := []string{"/healthz", "/readyz", "/metrics", "/v1/openapi.json", "/v1/recordings/{token}", // the token is the credential
		"/panel", "/c2c", "/panel/assets/{name}", "/panel/session"} // the agent panel's pages and its sign-in
	for path, ops := range doc.Paths {
		for method, op := range ops {
			key := strings.ToUpper(method) + " " + path
			if !routed[key] {
				t.Errorf("%s is documented but not routed", key)
			}
			if slices.Contains(public, path) != (len(op.Security) == 0) {
				t.Errorf("%s: security %v", key, op.Security)
			}
			if len(op.Security) > 0 && (op.Scope == "" || op.Responses["401"] == nil || op.Responses["403"] == nil || op.Responses["504"] == nil) {
				t.Errorf("%s: no scope or 401/403/504", key)
			}
			// Every body may be too large; a documented body may be invalid.
			if (method == "post" || method == "delete") && op.Responses["413"] == nil || op.RequestBody != nil && op.Responses["400"] == nil {
				t.Errorf("%s: a body without 413 or 400", key)
			}
			// A write needs the PBX link, the dispatcher or the store, and
			// each can be down.
			if (method == "post" || method == "delete") && strings.HasPrefix(path, "/v1/") && op.Responses["503"] == nil {
				t.Errorf("%s: a write without 503", key)
			}
			// The browser rules: any write may be refused for its Origin
			// (403) or its body's type (415); without a key, for its Host.
			write := method == "post" || method == "put" || method == "patch" || method == "delete"
			if write && strings.HasPrefix(path, "/v1/") && (op.Responses["415"] == nil || op.Responses["403"] == nil) {
				t.Errorf("%s: a write without 415 or 403", key)
			}
			if len(op.Security) > 0 && op.Responses["421"] == nil {
				t.Errorf("%s: no 421", key)
			}
		}
	}
	if doc.Paths["/v1/events/stream"]["get"].Responses["429"] == nil {
		t.Error("GET /v1/events/stream: no 429")
	}
	for _, code := range []string{"unsupported_media_type", "misdirected", "too_many_streams"} {
		if !strings.Contains(string(raw), `"`+code+`"`) {
			t.Errorf("the Problem codes lack %s", code)
		}
	}
	var root any
	_ = json.Unmarshal(raw, &root)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					parts := strings.Split(strings.TrimPrefix(x.(string), "#/"), "/")
					var cur any = root
					for _, p := range parts {
						m, _ := cur.(map[string]any)
						cur = m[p]
					}
					if cur == nil {
						t.Errorf("dangling $ref %s", x)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(root)
}

// The document is valid OpenAPI 3 by a real validator (kin-openapi), names a
// server and a licence, and every operation has a unique camelCase
// operationId (client generators name their methods after it).
func TestOpenAPIValid(t *testing.T) {
	srv := apihttp.NewServer(nil, nil, nil)
	res, err := srv.App().Test(nethttp.NewRequest("GET", "/v1/openapi.json", nil))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /v1/openapi.json: %v %v", res, err)
	}
	raw, _ := io.ReadAll(res.Body)
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	if len(doc.Servers) == 0 || (doc.Servers[0].URL != "/" && doc.Servers[0].URL != "http://127.0.0.1:8080") {
		t.Errorf("servers: %v, want a relative / or http://127.0.0.1:8080", doc.Servers)
	}
	if doc.Info.License == nil || doc.Info.License.Name == "" {
		t.Error("info.license has no name")
	}
	// The validated document's operations are exactly the routes (fiber's
	// :id is OpenAPI's {id}; fiber adds HEAD to every GET).
	param := regexp.MustCompile(`:([A-Za-z]+)`)
	routed := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method != "HEAD" {
			routed[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
		}
	}
	camel := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + path
			if !routed[key] {
				t.Errorf("%s is documented but not routed", key)
			}
			delete(routed, key)
			switch id := op.OperationID; {
			case !camel.MatchString(id):
				t.Errorf("%s: operationId %q is not camelCase", key, id)
			case seen[id] != "":
				t.Errorf("%s: operationId %q is also %s", key, id, seen[id])
			default:
				seen[id] = key
			}
		}
	}
	for key := range routed {
		t.Errorf("%s is routed but not documented", key)
	}
}
