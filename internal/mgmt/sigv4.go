package mgmt

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigV4Service is the service name in the credential scope of a management
// API request, as AWS's @connections API expects.
const SigV4Service = "execute-api"

// MaxClockSkew is how far X-Amz-Date may be from the server's clock, in
// either direction.
const MaxClockSkew = 5 * time.Minute

const (
	sigv4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
)

// SigV4 accepts requests signed with AWS Signature Version 4 by one access
// key, so the unmodified AWS SDK management client (apigatewaymanagementapi)
// can call the API. The zero value (no AccessKeyID) turns it off.
//
// A session token (X-Amz-Security-Token) is signed over like any header but
// not checked: there is no STS here, so temporary credentials work only when
// their key id and secret are the configured ones.
type SigV4 struct {
	// AccessKeyID is the only key id accepted.
	AccessKeyID string
	// SecretAccessKey is its secret. It is never logged or echoed.
	SecretAccessKey string
	// Region is the signing region callers must use, e.g. "us-east-1"; ""
	// accepts any region, as a key handed to local functions that sign
	// with their own AWS_REGION needs.
	Region string
	// Now returns the time that X-Amz-Date is checked against; nil means
	// time.Now.
	Now func() time.Time
}

func (c SigV4) enabled() bool { return c.AccessKeyID != "" }

func (c SigV4) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// sigv4Error is a 403 ForbiddenException with msg.
func sigv4Error(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Type: "ForbiddenException", Message: msg}
}

// authorization is a parsed "Authorization: AWS4-HMAC-SHA256 …" header.
type authorization struct {
	AccessKeyID string
	Date        string // YYYYMMDD of the credential scope
	Region      string
	Service     string
	// SignedHeaders are lower-case names, in the order given.
	SignedHeaders []string
	Signature     string // 64 lower-case hex digits
}

// parseAuthorization parses an AWS Signature Version 4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// The three parameters may come in any order, each exactly once, separated by
// commas with optional spaces. The error says what is malformed and never
// contains the signature.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	rest, ok := strings.CutPrefix(h, sigv4Algorithm+" ")
	if !ok {
		return a, errors.New("the algorithm must be " + sigv4Algorithm)
	}
	var cred, signed, sig string
	var seen [3]bool
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, errors.New("parameters must be name=value")
		}
		var i int
		switch k {
		case "Credential":
			i, cred = 0, v
		case "SignedHeaders":
			i, signed = 1, v
		case "Signature":
			i, sig = 2, v
		default:
			return a, fmt.Errorf("unknown parameter %q", truncate(k, 32))
		}
		if seen[i] {
			return a, fmt.Errorf("parameter %s is repeated", k)
		}
		seen[i] = true
	}
	for i, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if !seen[i] {
			return a, fmt.Errorf("parameter %s is missing", name)
		}
	}

	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return a, errors.New("Credential must be KEYID/YYYYMMDD/REGION/SERVICE/aws4_request")
	}
	for _, s := range scope[:4] {
		if s == "" {
			return a, errors.New("Credential must be KEYID/YYYYMMDD/REGION/SERVICE/aws4_request")
		}
	}
	if _, err := time.Parse("20060102", scope[1]); err != nil || len(scope[1]) != 8 {
		return a, errors.New("the Credential date must be YYYYMMDD")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]

	if signed == "" {
		return a, errors.New("SignedHeaders is empty")
	}
	a.SignedHeaders = strings.Split(signed, ";")
	for _, name := range a.SignedHeaders {
		if name == "" || name != strings.ToLower(name) || !validHeaderName(name) {
			return a, errors.New("SignedHeaders must be lower-case header names separated by ;")
		}
	}

	if len(sig) != 64 || strings.ToLower(sig) != sig {
		return a, errors.New("Signature must be 64 lower-case hex digits")
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return a, errors.New("Signature must be 64 lower-case hex digits")
	}
	a.Signature = sig
	return a, nil
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// precheck checks everything about r's SigV4 Authorization header that
// does not need the body: its syntax, the access key id, the credential
// scope's service and region, that host, x-amz-date and every other signed
// header are present, and that X-Amz-Date is well formed, agrees with the
// scope and lies within MaxClockSkew. It returns the parsed header and the
// signing time for checkSignature. Every failure is a 403
// ForbiddenException whose message never contains the secret or a
// signature.
func (c SigV4) precheck(r *http.Request) (authorization, time.Time, error) {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return a, time.Time{}, sigv4Error("Authorization header is not a valid AWS Signature Version 4 header: " + err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(a.AccessKeyID), []byte(c.AccessKeyID)) != 1 {
		return a, time.Time{}, errUnknownKey
	}
	at, err := c.precheckParsed(r, a)
	return a, at, err
}

// errUnknownKey is the denial of a signature by a key id that is not
// accepted.
var errUnknownKey = sigv4Error("The security token included in the request is invalid: unknown access key id")

// keyring is the SigV4 keys a server accepts.
type keyring []SigV4

// precheck is SigV4.precheck with the key whose id the request names. Every
// key id is compared, in constant time, whatever the request names.
func (ks keyring) precheck(r *http.Request) (SigV4, authorization, time.Time, error) {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return SigV4{}, a, time.Time{}, sigv4Error("Authorization header is not a valid AWS Signature Version 4 header: " + err.Error())
	}
	found := -1
	for i, k := range ks {
		if subtle.ConstantTimeCompare([]byte(a.AccessKeyID), []byte(k.AccessKeyID)) == 1 {
			found = i
		}
	}
	if found < 0 {
		return SigV4{}, a, time.Time{}, errUnknownKey
	}
	key := ks[found]
	at, err := key.precheckParsed(r, a)
	return key, a, at, err
}

// precheckParsed is precheck after the header is parsed and its key id
// found to be c's.
func (c SigV4) precheckParsed(r *http.Request, a authorization) (time.Time, error) {
	if a.Service != SigV4Service {
		return time.Time{}, sigv4Error("Credential should be scoped to correct service: '" + SigV4Service + "'.")
	}
	if c.Region != "" && a.Region != c.Region {
		return time.Time{}, sigv4Error(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'; this gateway signs as '%s'.", truncate(a.Region, 32), c.Region))
	}
	if !slices.Contains(a.SignedHeaders, "host") {
		return time.Time{}, sigv4Error("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !slices.Contains(a.SignedHeaders, "x-amz-date") {
		return time.Time{}, sigv4Error("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}
	for _, name := range a.SignedHeaders {
		switch name {
		case "host", "content-length", "transfer-encoding":
			// Not kept in r.Header.
		default:
			if _, ok := r.Header[http.CanonicalHeaderKey(name)]; !ok {
				return time.Time{}, sigv4Error(fmt.Sprintf("The signed header '%s' is missing from the request.", truncate(name, 64)))
			}
		}
	}
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return time.Time{}, sigv4Error("X-Amz-Date must be an ISO 8601 basic date-time such as 20260101T120000Z.")
	}
	if a.Date != amzDate[:8] {
		return time.Time{}, sigv4Error("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.")
	}
	now := c.now().UTC()
	if at.Before(now.Add(-MaxClockSkew)) {
		return time.Time{}, sigv4Error(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			amzDate, now.Add(-MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat)))
	}
	if at.After(now.Add(MaxClockSkew)) {
		return time.Time{}, sigv4Error(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			amzDate, now.Add(MaxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat)))
	}
	return at, nil
}

// checkSignature recomputes the signature of r, which precheck has passed
// as a and at, for a body of contentLength bytes whose SHA-256 is
// payloadHash (lower-case hex), and compares it with the one r carries in
// constant time.
func (c SigV4) checkSignature(r *http.Request, a authorization, at time.Time, contentLength int64, payloadHash string) error {
	want, err := c.sign(r, a, contentLength, payloadHash, at)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.Signature)) != 1 {
		return sigv4Error("The request signature does not match the one wsgate calculated: check the secret access key, the region and the signing method.")
	}
	return nil
}

// verify checks r's SigV4 signature over body (the whole request body,
// already read): precheck, then checkSignature with the body's SHA-256.
func (c SigV4) verify(r *http.Request, body []byte) error {
	a, at, err := c.precheck(r)
	if err != nil {
		return err
	}
	return c.checkSignature(r, a, at, int64(len(body)), sha256Hex(body))
}

// signerIgnores reports whether aws-sdk-go-v2's signer leaves the header
// key (canonical) out of what it signs. Other signers sign such headers
// (the Java SDK v1 signs User-Agent, for one) and AWS verifies whatever
// headers a request names, so the verifier must sign them when they are
// named.
func signerIgnores(key string) bool {
	switch key {
	case "User-Agent", "X-Amzn-Trace-Id", "Expect":
		return true
	}
	return false
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// sign recomputes the signature of r as a client holding the configured
// secret would have made it. The copy of r that is signed holds only the
// signed headers, the same escaped URL, and contentLength and payloadHash
// for the body.
func (c SigV4) sign(r *http.Request, a authorization, contentLength int64, payloadHash string, at time.Time) (string, error) {
	u := *r.URL
	u.Host = r.Host
	u.Scheme = "http"
	if r.TLS != nil {
		u.Scheme = "https"
	}
	cp := &http.Request{
		Method: r.Method,
		URL:    &u,
		Host:   r.Host,
		Header: make(http.Header, len(a.SignedHeaders)),
	}
	for _, name := range a.SignedHeaders {
		switch name {
		case "host":
		case "content-length":
			// The signer signs ContentLength itself, when it is not zero.
			cp.ContentLength = contentLength
		case "transfer-encoding":
			// Not kept in r.Header; the signer drops it by its canonical
			// name, so it goes under the name that was signed.
			if len(r.TransferEncoding) > 0 {
				cp.Header[name] = slices.Clone(r.TransferEncoding)
			}
		default:
			key := http.CanonicalHeaderKey(name)
			if v, ok := r.Header[key]; ok {
				if signerIgnores(key) {
					// Under a key the signer's rule does not name, so
					// it signs it as the client did.
					key = name
				}
				cp.Header[key] = slices.Clone(v)
			}
		}
	}
	creds := aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    r.Header.Get("X-Amz-Security-Token"),
	}
	err := v4.NewSigner().SignHTTP(r.Context(), creds, cp, payloadHash, a.Service, a.Region, at)
	if err != nil {
		return "", fmt.Errorf("sigv4: signing the request copy: %w", err)
	}
	_, sig, ok := strings.Cut(cp.Header.Get("Authorization"), "Signature=")
	if !ok {
		return "", errors.New("sigv4: the signer wrote no signature")
	}
	return sig, nil
}
