package servicetest

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// AWSServer answers on 127.0.0.1 the way SQS SendMessage (JSON protocol),
// SNS Publish (query protocol) and EventBridge PutEvents answer, for tests
// of clients that cannot reach AWS. It checks every request's SigV4
// signature by signing a copy with the SDK's signer — the key id, the
// secret, the region and the service the API belongs to — and refuses a
// request whose signature differs as AWS does. It records the requests it
// accepts. Its methods are safe for concurrent use.
type AWSServer struct {
	// URL is the server's base URL, the endpoint clients are given.
	URL string
	// Region is the region requests must be signed for.
	Region string

	creds aws.Credentials
	srv   *httptest.Server
	seq   atomic.Int64

	// mu guards requests and handle.
	mu       sync.Mutex
	requests []*AWSRequest
	handle   func(w http.ResponseWriter, r *AWSRequest) bool
}

// AWSRequest is a request the server received.
type AWSRequest struct {
	// Operation is "AmazonSQS.SendMessage", "AWSEvents.PutEvents" (the
	// X-Amz-Target header) or "SNS.Publish" (the query Action).
	Operation string
	// Service is the service of the signature's scope.
	Service string
	Header  http.Header
	Body    []byte
	// JSON is the body of a JSON-protocol request, decoded.
	JSON map[string]any
	// Form is the body of a query-protocol request, decoded.
	Form url.Values
}

// AWS starts an AWSServer that takes requests signed with creds for region
// and closes it when the test ends.
func AWS(t testing.TB, creds aws.Credentials, region string) *AWSServer {
	t.Helper()
	s := &AWSServer{Region: region, creds: creds}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Requests returns the requests accepted so far.
func (s *AWSServer) Requests() []*AWSRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*AWSRequest(nil), s.requests...)
}

// Handle makes h see each request whose signature holds, before the
// server answers it; when h returns true it has answered and the server
// does nothing more. nil restores the normal answers.
func (s *AWSServer) Handle(h func(w http.ResponseWriter, r *AWSRequest) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handle = h
}

// Close closes the server: clients then fail to connect.
func (s *AWSServer) Close() { s.srv.Close() }

func (s *AWSServer) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := &AWSRequest{Header: r.Header.Clone(), Body: body}
	var service string
	switch target := r.Header.Get("X-Amz-Target"); {
	case target == "AmazonSQS.SendMessage" && r.Header.Get("Content-Type") == "application/x-amz-json-1.0":
		req.Operation, service = target, "sqs"
	case target == "AWSEvents.PutEvents" && r.Header.Get("Content-Type") == "application/x-amz-json-1.1":
		req.Operation, service = target, "events"
	case target == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("Action") != "Publish" || form.Get("Version") != "2010-03-31" {
			snsError(w, http.StatusBadRequest, "InvalidAction", "only Publish (2010-03-31) is served here")
			return
		}
		req.Operation, req.Form, service = "SNS.Publish", form, "sns"
	default:
		http.Error(w, fmt.Sprintf("unexpected request: %s %s, X-Amz-Target %q, Content-Type %q", r.Method, r.URL, target, r.Header.Get("Content-Type")), http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		return
	}
	if req.Form == nil {
		if err := json.Unmarshal(body, &req.JSON); err != nil {
			jsonError(w, http.StatusBadRequest, "SerializationException", "", "body is not JSON")
			return
		}
	}
	if msg := s.verify(r, body, service); msg != "" {
		if service == "sns" {
			snsError(w, http.StatusForbidden, "SignatureDoesNotMatch", msg)
		} else {
			jsonError(w, http.StatusBadRequest, "InvalidSignatureException", "", msg)
		}
		return
	}
	req.Service = service
	s.mu.Lock()
	s.requests = append(s.requests, req)
	h := s.handle
	s.mu.Unlock()
	if h != nil && h(w, req) {
		return
	}
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq.Add(1))
	switch service {
	case "sqs":
		s.sendMessage(w, req, id)
	case "sns":
		s.publish(w, req, id)
	case "events":
		s.putEvents(w, req, id)
	}
}

// verify checks the SigV4 signature of r for service, returning what is
// wrong or "".
func (s *AWSServer) verify(r *http.Request, body []byte, service string) string {
	auth := r.Header.Get("Authorization")
	if s.creds.AccessKeyID == "" {
		if auth != "" {
			return "this server takes unsigned requests"
		}
		return ""
	}
	const prefix = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, prefix) {
		return "missing Authentication Token"
	}
	var credential, signed, signature string
	for _, part := range strings.Split(strings.TrimPrefix(auth, prefix), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			signature = v
		}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[0] != s.creds.AccessKeyID || scope[2] != s.Region || scope[3] != service || scope[4] != "aws4_request" {
		return fmt.Sprintf("credential scope %q is not %s/DATE/%s/%s/aws4_request", credential, s.creds.AccessKeyID, s.Region, service)
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "X-Amz-Date missing or malformed"
	}
	if d := time.Since(when); d > 5*time.Minute || d < -5*time.Minute {
		return "Signature expired"
	}
	if s.creds.SessionToken != "" && r.Header.Get("X-Amz-Security-Token") != s.creds.SessionToken {
		return "the security token included in the request is invalid"
	}
	u := *r.URL
	u.Scheme, u.Host = "http", r.Host
	cp := &http.Request{Method: r.Method, URL: &u, Host: r.Host, Header: http.Header{}}
	for _, name := range strings.Split(signed, ";") {
		switch name {
		case "host":
		case "content-length":
			cp.ContentLength = int64(len(body))
		default:
			if v, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
				cp.Header[http.CanonicalHeaderKey(name)] = v
			}
		}
	}
	if !strings.Contains(signed, "host") || !strings.Contains(signed, "x-amz-date") {
		return "host and x-amz-date must be signed"
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), s.creds, cp, hex.EncodeToString(sum[:]), service, s.Region, when); err != nil {
		return "signing the copy: " + err.Error()
	}
	_, want, _ := strings.Cut(cp.Header.Get("Authorization"), "Signature=")
	if want == "" || want != signature {
		return "The request signature we calculated does not match the signature you provided."
	}
	return ""
}

func (s *AWSServer) sendMessage(w http.ResponseWriter, r *AWSRequest, id string) {
	queue, _ := r.JSON["QueueUrl"].(string)
	body, _ := r.JSON["MessageBody"].(string)
	if queue == "" || body == "" {
		jsonError(w, http.StatusBadRequest, "MissingParameter", "AWS.SimpleQueueService.MissingParameter;Sender", "QueueUrl and MessageBody are required")
		return
	}
	fifo := strings.HasSuffix(queue, ".fifo")
	_, group := r.JSON["MessageGroupId"]
	_, dedup := r.JSON["MessageDeduplicationId"]
	if fifo && (!group || !dedup) || !fifo && dedup {
		jsonError(w, http.StatusBadRequest, "InvalidParameterValue", "InvalidParameterValue;Sender", "MessageGroupId and MessageDeduplicationId are for FIFO queues, and required there")
		return
	}
	sumBody := md5.Sum([]byte(body))
	out := map[string]string{"MessageId": id, "MD5OfMessageBody": hex.EncodeToString(sumBody[:])}
	if attrs, ok := r.JSON["MessageAttributes"].(map[string]any); ok && len(attrs) > 0 {
		out["MD5OfMessageAttributes"] = attributesMD5(attrs)
	}
	if fifo {
		out["SequenceNumber"] = fmt.Sprintf("%020d", s.seq.Load())
	}
	writeJSON(w, "application/x-amz-json-1.0", out)
}

// attributesMD5 is SQS's digest of String message attributes: for each
// attribute by name, the name, the data type, a 1 and the value, each
// string preceded by its length as 4 big-endian bytes.
func attributesMD5(attrs map[string]any) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(s string) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(s)))
		_, _ = io.WriteString(h, s)
	}
	for _, n := range names {
		a, _ := attrs[n].(map[string]any)
		typ, _ := a["DataType"].(string)
		val, _ := a["StringValue"].(string)
		put(n)
		put(typ)
		_, _ = h.Write([]byte{1})
		put(val)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *AWSServer) publish(w http.ResponseWriter, r *AWSRequest, id string) {
	if r.Form.Get("TopicArn") == "" || r.Form.Get("Message") == "" {
		snsError(w, http.StatusBadRequest, "InvalidParameter", "TopicArn and Message are required")
		return
	}
	seq := ""
	if strings.HasSuffix(r.Form.Get("TopicArn"), ".fifo") {
		if r.Form.Get("MessageGroupId") == "" || r.Form.Get("MessageDeduplicationId") == "" {
			snsError(w, http.StatusBadRequest, "InvalidParameter", "MessageGroupId and MessageDeduplicationId are required for FIFO topics")
			return
		}
		seq = "<SequenceNumber>" + fmt.Sprintf("%020d", s.seq.Load()) + "</SequenceNumber>"
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>%s</MessageId>%s</PublishResult><ResponseMetadata><RequestId>r-%s</RequestId></ResponseMetadata></PublishResponse>`, id, seq, id)
}

func (s *AWSServer) putEvents(w http.ResponseWriter, r *AWSRequest, id string) {
	entries, _ := r.JSON["Entries"].([]any)
	out := map[string]any{"FailedEntryCount": 0}
	var results []map[string]string
	for _, e := range entries {
		entry, _ := e.(map[string]any)
		detail, _ := entry["Detail"].(string)
		var obj map[string]any
		if entry["Source"] == nil || entry["DetailType"] == nil || json.Unmarshal([]byte(detail), &obj) != nil {
			results = append(results, map[string]string{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
			out["FailedEntryCount"] = out["FailedEntryCount"].(int) + 1
			continue
		}
		results = append(results, map[string]string{"EventId": id})
	}
	out["Entries"] = results
	writeJSON(w, "application/x-amz-json-1.1", out)
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	_ = json.NewEncoder(w).Encode(v)
}

// jsonError answers as a JSON-protocol service reports an error; queryCode,
// when set, is SQS's x-amzn-query-error header.
func jsonError(w http.ResponseWriter, status int, typ, queryCode, msg string) {
	if queryCode != "" {
		w.Header().Set("x-amzn-query-error", queryCode)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}

// snsError answers as a query-protocol service reports an error.
func snsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		code, msg, strconv.Itoa(int(time.Now().UnixNano()%1e9)))
}

// JSONError answers as SQS or EventBridge report an error: status, the
// error type and message.
func JSONError(w http.ResponseWriter, status int, typ, msg string) {
	jsonError(w, status, typ, "", msg)
}

// XMLError answers as SNS reports an error: status, the error code and
// message.
func XMLError(w http.ResponseWriter, status int, code, msg string) {
	snsError(w, status, code, msg)
}
