package awsevent

import "unicode/utf8"

// ForbiddenFrame returns the text frame API Gateway sends, keeping the socket
// open, when no route matches a message and there is no $default route, or
// when a route is denied:
//
//	{"message": "Forbidden", "connectionId":"…", "requestId":"…"}
//
// The spacing is AWS's: a space after "message": and after each comma, none
// after the other colons. Clients that compare the text byte for byte rely on
// it.
func ForbiddenFrame(connectionID, requestID string) []byte {
	return errorFrame("Forbidden", connectionID, requestID)
}

// InternalErrorFrame returns the text frame API Gateway sends, keeping the
// socket open, when a message route's integration fails: the function threw
// or returned an error, or its invocation was throttled.
//
//	{"message": "Internal server error", "connectionId":"…", "requestId":"…"}
//
// The spacing matches ForbiddenFrame.
func InternalErrorFrame(connectionID, requestID string) []byte {
	return errorFrame("Internal server error", connectionID, requestID)
}

// LimitExceededFrame returns the text frame API Gateway sends, keeping the
// socket open, when a connection's message is throttled; the message goes no
// further.
//
//	{"message": "Limit Exceeded", "connectionId":"…", "requestId":"…"}
//
// The spacing matches ForbiddenFrame.
func LimitExceededFrame(connectionID, requestID string) []byte {
	return errorFrame("Limit Exceeded", connectionID, requestID)
}

// TooManyRequestsFrame returns the text frame a client gets, the socket
// staying open, when its message is over its route's throttling (the
// stage's or the route's rate and burst): the message goes no further.
//
//	{"message": "Too Many Requests", "connectionId":"…", "requestId":"…"}
//
// "Too Many Requests" is the message of API Gateway's THROTTLED gateway
// response (status 429), in the shape and spacing of ForbiddenFrame.
func TooManyRequestsFrame(connectionID, requestID string) []byte {
	return errorFrame("Too Many Requests", connectionID, requestID)
}

// SubscriptionLimitFrame returns the text frame a client gets, the socket
// staying open, when it asks the built-in subscribe route for one topic more
// than limits.max_subscriptions_per_connection allows. AWS has no such
// limit; the frame has the shape and spacing of ForbiddenFrame.
//
//	{"message": "Subscription limit exceeded", "connectionId":"…", "requestId":"…"}
func SubscriptionLimitFrame(connectionID, requestID string) []byte {
	return errorFrame("Subscription limit exceeded", connectionID, requestID)
}

// BadRequestBodyFrame returns the text frame API Gateway sends, keeping the
// socket open, when a message fails its route's request validation (its
// model, chosen by the model selection expression); the message goes no
// further. Unlike the other frames it names the message id, not a request
// id, and it has AWS's own spacing, a space on both sides of the first
// colon and after the others:
//
//	{"message" : "Bad request body", "connectionId": "…", "messageId": "…"}
func BadRequestBodyFrame(connectionID, messageID string) []byte {
	b := make([]byte, 0, len(`{"message" : "Bad request body", "connectionId": "", "messageId": ""}`)+
		len(connectionID)+len(messageID))
	b = append(b, `{"message" : "Bad request body", "connectionId": `...)
	b = appendString(b, connectionID)
	b = append(b, `, "messageId": `...)
	b = appendString(b, messageID)
	return append(b, '}')
}

func errorFrame(message, connectionID, requestID string) []byte {
	b := make([]byte, 0, len(`{"message": "", "connectionId":"", "requestId":""}`)+
		len(message)+len(connectionID)+len(requestID))
	b = append(b, `{"message": `...)
	b = appendString(b, message)
	b = append(b, `, "connectionId":`...)
	b = appendString(b, connectionID)
	b = append(b, `, "requestId":`...)
	b = appendString(b, requestID)
	return append(b, '}')
}

// appendString appends s as a JSON string. Ids never need escaping, but the
// frame stays valid JSON whatever a caller passes: quotes, backslashes and
// control characters are escaped and invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
