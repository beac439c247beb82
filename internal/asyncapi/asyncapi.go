// Package asyncapi describes a configured wsgate API as an AsyncAPI 3.0
// document: the server clients connect to, how they authenticate, the
// messages each route accepts (with its model as payload) and answers, and
// what the gateway sends on its own: pushes through the management API and
// AWS's error frames.
//
// The document is written from the gateway's side: a message a client sends
// is an operation with action "receive", a message the gateway sends to a
// client one with action "send". All channels share the one WebSocket
// address, the upgrade path: a channel stands for a route, or for a kind of
// message the gateway sends, not for a separate connection.
//
// The package reads the configuration and, for models kept in files, those
// files; it has no other effect.
package asyncapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wsgate/wsgate/internal/config"
)

// Version is the AsyncAPI version of the documents this package writes.
const Version = "3.0.0"

// Options are what the document needs beyond the configuration.
type Options struct {
	// ReadFile reads a model file (routes.KEY.model_file, or a models
	// value that names a file). Nil means no file can be read: such a
	// route's payload is then left open, with a description naming the
	// file.
	ReadFile func(name string) ([]byte, error)
}

// JSON returns the document of cfg as indented JSON.
func JSON(cfg *config.Config, opts Options) ([]byte, error) {
	doc, err := Build(cfg, opts)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// YAML returns the document of cfg as YAML, with the keys in the order of
// the JSON form.
func YAML(cfg *config.Config, opts Options) ([]byte, error) {
	j, err := JSON(cfg, opts)
	if err != nil {
		return nil, err
	}
	// JSON is YAML: decoding it into a node keeps the key order, and
	// clearing the styles turns its flow mappings and quoted scalars into
	// YAML's block style where that reads the same.
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func blockStyle(n *yaml.Node) {
	// A string that would read as another type (true, 1, null) is still
	// quoted: the encoder quotes a plain !!str scalar that needs it.
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Document is an AsyncAPI 3.0 document. Its fields are in the order the
// specification lists them.
type Document struct {
	AsyncAPI           string               `json:"asyncapi"`
	ID                 string               `json:"id,omitempty"`
	Info               Info                 `json:"info"`
	Servers            map[string]Server    `json:"servers,omitempty"`
	DefaultContentType string               `json:"defaultContentType,omitempty"`
	Channels           map[string]Channel   `json:"channels,omitempty"`
	Operations         map[string]Operation `json:"operations,omitempty"`
	Components         *Components          `json:"components,omitempty"`
}

// Info is the document's Info Object.
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Server is a Server Object.
type Server struct {
	Host        string `json:"host"`
	Protocol    string `json:"protocol"`
	Pathname    string `json:"pathname,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Security    []Ref  `json:"security,omitempty"`
}

// Ref is a Reference Object.
type Ref struct {
	Ref string `json:"$ref"`
}

// Channel is a Channel Object.
type Channel struct {
	Address     string             `json:"address"`
	Title       string             `json:"title,omitempty"`
	Description string             `json:"description,omitempty"`
	Messages    map[string]Message `json:"messages,omitempty"`
	Servers     []Ref              `json:"servers,omitempty"`
	Bindings    map[string]any     `json:"bindings,omitempty"`
	// Extensions beyond the specification.
	TopicsAllow []string `json:"x-wsgate-topics-allow,omitempty"`
}

// Message is a Message Object.
type Message struct {
	Name        string `json:"name,omitempty"`
	Title       string `json:"title,omitempty"`
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	ContentType string `json:"contentType,omitempty"`
	// Payload is a Schema Object or a Multi Format Schema Object.
	Payload  any   `json:"payload,omitempty"`
	Examples []any `json:"examples,omitempty"`
}

// Operation is an Operation Object.
type Operation struct {
	Action      string `json:"action"`
	Channel     Ref    `json:"channel"`
	Title       string `json:"title,omitempty"`
	Summary     string `json:"summary,omitempty"`
	Description string `json:"description,omitempty"`
	Messages    []Ref  `json:"messages,omitempty"`
	Reply       *Reply `json:"reply,omitempty"`
	// Extensions beyond the specification.
	RouteKey string `json:"x-wsgate-route-key,omitempty"`
}

// Reply is an Operation Reply Object.
type Reply struct {
	Channel  Ref   `json:"channel"`
	Messages []Ref `json:"messages,omitempty"`
}

// Components holds the document's reusable objects: here its security
// schemes.
type Components struct {
	SecuritySchemes map[string]SecurityScheme `json:"securitySchemes,omitempty"`
}

// SecurityScheme is a Security Scheme Object.
type SecurityScheme struct {
	Type         string `json:"type"`
	Description  string `json:"description,omitempty"`
	Name         string `json:"name,omitempty"`
	In           string `json:"in,omitempty"`
	Scheme       string `json:"scheme,omitempty"`
	BearerFormat string `json:"bearerFormat,omitempty"`
}

// Build returns the document of cfg, whose defaults are filled (as Load,
// Parse and Default return it). It fails only when a model file cannot be
// read or does not hold JSON.
func Build(cfg *config.Config, opts Options) (*Document, error) {
	b := &builder{cfg: cfg, opts: opts, doc: &Document{
		AsyncAPI:           Version,
		DefaultContentType: "application/json",
		Channels:           map[string]Channel{},
		Operations:         map[string]Operation{},
	}}
	b.info()
	b.server()
	if err := b.routes(); err != nil {
		return nil, err
	}
	b.pushes()
	b.errors()
	return b.doc, nil
}

type builder struct {
	cfg  *config.Config
	opts Options
	doc  *Document
	// serverKey names the one server.
	serverKey string
}

func (b *builder) info() {
	c := b.cfg
	title := c.APIID + " WebSocket API"
	if c.Stage != "" {
		title += " (stage " + c.Stage + ")"
	}
	var d strings.Builder
	fmt.Fprintf(&d, "The WebSocket API that wsgate serves for api_id %q, stage %q.\n\n", c.APIID, c.EventStage())
	fmt.Fprintf(&d, "Clients upgrade at `%s`. Each text message is routed by `%s`: "+
		"a message whose value names no route goes to `$default`, and without a `$default` route it is answered "+
		"with the Forbidden frame.\n\n", c.UpgradePath(), c.RouteSelectionExpression)
	d.WriteString("Operations are written from the gateway's side: `receive` is a message a client sends, " +
		"`send` one the gateway sends to a client.")
	if len(c.Origins) > 0 {
		fmt.Fprintf(&d, "\n\nBrowsers must connect from one of these origins (else 403): %s.", strings.Join(c.Origins, ", "))
	}
	if len(c.Subprotocols) > 0 {
		fmt.Fprintf(&d, "\n\nSubprotocols the gateway speaks: %s.", strings.Join(c.Subprotocols, ", "))
	}
	fmt.Fprintf(&d, "\n\nLimits: frames of at most %d bytes and messages of at most %d bytes (larger close the connection with 1009); ",
		c.Limits.MaxFrameBytes, c.Limits.MaxMessageBytes)
	if c.BinaryFrames == config.BinaryBase64 {
		d.WriteString("binary frames are delivered base64-encoded.")
	} else {
		d.WriteString("binary frames close the connection with 1003.")
	}
	b.doc.Info = Info{Title: title, Version: c.EventStage(), Description: d.String()}
	b.doc.ID = "urn:wsgate:" + c.APIID + ":" + strings.TrimPrefix(c.EventStage(), "$")
}

func (b *builder) server() {
	c := b.cfg
	protocol := "ws"
	if c.TLS.CertFile != "" || c.TLS.ACME.Configured() {
		protocol = "wss"
	}
	b.serverKey = c.Stage
	if b.serverKey == "" {
		b.serverKey = "default"
	}
	s := Server{
		Host:     serverHost(c, protocol),
		Protocol: protocol,
		Pathname: c.UpgradePath(),
		Title:    "stage " + c.EventStage(),
	}
	var d []string
	if c.DomainName == "" && len(c.TLS.ACME.Domains) == 0 {
		d = append(d, "The host is the client listener's address (`listen: "+c.Listen+"`); clients use the name under which they reach it.")
	}
	switch {
	case c.TLS.ClientCAFile != "" && c.TLS.ClientAuth == config.ClientAuthRequest:
		d = append(d, "Clients may present a certificate signed by the configured client CA (mutual TLS); events then carry it.")
	case c.TLS.ClientCAFile != "":
		d = append(d, "Clients present a certificate signed by the configured client CA (mutual TLS).")
	}
	schemes := b.security()
	switch {
	case c.Authorizer.Type == config.AuthNone || c.Authorizer.Type == "":
		d = append(d, "Clients connect without authentication.")
	case len(c.Authorizer.IdentitySources) > 1 || c.Authorizer.CSRF.Cookie != "":
		d = append(d, "Every listed security scheme is required at once: a handshake missing any of them is answered 401 before the authorizer runs, as in API Gateway.")
	}
	if c.Authorizer.Type == config.AuthRequest || c.Authorizer.Type == config.AuthLambda {
		d = append(d, "A custom REQUEST authorizer decides each handshake: 401 when it answers Unauthorized, 403 for a Deny policy.")
	}
	s.Description = strings.Join(d, " ")
	for _, k := range slices.Sorted(maps.Keys(schemes)) {
		s.Security = append(s.Security, Ref{"#/components/securitySchemes/" + k})
	}
	if len(schemes) > 0 {
		b.doc.Components = &Components{SecuritySchemes: schemes}
	}
	b.doc.Servers = map[string]Server{b.serverKey: s}
}

// serverHost is the host (and port) clients reach: domain_name, else the
// first ACME domain, else the listen address with "localhost" for an
// unspecified host. A port that is the scheme's default is left out.
func serverHost(c *config.Config, protocol string) string {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		host, port = c.Listen, ""
	}
	switch {
	case c.DomainName != "":
		host = c.DomainName
	case len(c.TLS.ACME.Domains) > 0:
		host = c.TLS.ACME.Domains[0]
	case host == "" || host == "0.0.0.0" || host == "::":
		host = "localhost"
	}
	if (protocol == "wss" && port == "443") || (protocol == "ws" && port == "80") || port == "" {
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			return "[" + host + "]"
		}
		return host
	}
	return net.JoinHostPort(host, port)
}

// security returns the security schemes of the authorizer: one for each
// identity source a client supplies, and the two halves of a CSRF token.
func (b *builder) security() map[string]SecurityScheme {
	a := b.cfg.Authorizer
	out := map[string]SecurityScheme{}
	if b.cfg.TLS.ClientCAFile != "" && b.cfg.TLS.ClientAuth != config.ClientAuthRequest {
		out["clientCertificate"] = SecurityScheme{Type: "X509", Description: "A client certificate signed by the configured client CA (mutual TLS)."}
	}
	if a.Type == config.AuthNone || a.Type == "" {
		return out
	}
	what := map[config.AuthorizerType]string{
		config.AuthJWT:     "a JSON Web Token (" + strings.Join(a.JWT.Algorithms, ", ") + ")",
		config.AuthBasic:   "HTTP Basic credentials, checked against an htpasswd file",
		config.AuthAPIKey:  "an API key",
		config.AuthRequest: "a value the custom REQUEST authorizer reads",
		config.AuthLambda:  "a value the Lambda REQUEST authorizer reads",
	}[a.Type]
	for i, src := range a.IdentitySources {
		desc := "Identity source `" + src + "`"
		if i == 0 && (a.Type == config.AuthJWT || a.Type == config.AuthAPIKey || a.Type == config.AuthBasic) {
			desc += ": " + what + "."
		} else {
			desc += ": required, passed to the authorizer."
		}
		var s SecurityScheme
		switch kind, name, _ := strings.Cut(strings.TrimPrefix(src, "route.request."), "."); kind {
		case "querystring":
			s = SecurityScheme{Type: "httpApiKey", In: "query", Name: name}
		case "cookie":
			s = SecurityScheme{Type: "httpApiKey", In: "cookie", Name: name}
		case "header":
			switch {
			case strings.EqualFold(name, "Authorization") && a.Type == config.AuthBasic && i == 0:
				s = SecurityScheme{Type: "http", Scheme: "basic"}
			case strings.EqualFold(name, "Authorization") && a.Type == config.AuthJWT && i == 0:
				s = SecurityScheme{Type: "http", Scheme: "bearer", BearerFormat: "JWT"}
			default:
				s = SecurityScheme{Type: "httpApiKey", In: "header", Name: name}
			}
		case "subprotocol":
			s = SecurityScheme{Type: "httpApiKey", In: "header", Name: "Sec-WebSocket-Protocol"}
			desc += " — an item of the Sec-WebSocket-Protocol header (`new WebSocket(url, [protocol, token])`); the gateway never echoes it back."
		default:
			// stageVariables.X is the gateway's own: nothing a client sends.
			continue
		}
		s.Description = desc
		out[schemeKey(src)] = s
	}
	if a.CSRF.Cookie != "" {
		out["csrfCookie"] = SecurityScheme{Type: "httpApiKey", In: "cookie", Name: a.CSRF.Cookie,
			Description: "Double-submit CSRF token: this cookie must equal the query parameter `" + a.CSRF.Query + "`."}
		out["csrfQuery"] = SecurityScheme{Type: "httpApiKey", In: "query", Name: a.CSRF.Query,
			Description: "Double-submit CSRF token: this query parameter must equal the cookie `" + a.CSRF.Cookie + "`."}
	}
	return out
}

var nonKey = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// schemeKey names the security scheme of an identity source with the
// characters a components key may hold.
func schemeKey(src string) string {
	return nonKey.ReplaceAllString(strings.TrimPrefix(src, "route.request."), "_")
}
