// Package route selects the route for each client message, the way API Gateway
// WebSocket APIs do.
//
// A WebSocket API has one route selection expression, such as
// "$request.body.action". Each text message the client sends is evaluated
// against it: the expression's variables are looked up in the JSON body, the
// values found are turned into text, and the resulting string is the route key.
// The route whose key equals it exactly handles the message; a message that is
// not JSON, or whose key names no route, goes to the $default route.
//
// [ParseExpression] compiles an expression once, when the API is configured,
// and [Expression.Evaluate] computes the key for one message. Evaluation reads
// the body in a single pass without building a document tree, and an
// [Expression] may be shared by any number of goroutines.
package route
