package integration

import "context"

var _ Integration = (*Mock)(nil)

// Mock answers without calling anything. With Echo set it returns the
// incoming message body, which makes a $default route an echo service;
// otherwise it returns Body.
type Mock struct {
	StatusCode int
	Body       string
	Echo       bool
}

// Invoke implements Integration.
func (m *Mock) Invoke(ctx context.Context, ev *Event) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	status := m.StatusCode
	if status == 0 {
		status = 200
	}
	body := m.Body
	if m.Echo {
		body = ev.Body
	}
	return &Response{StatusCode: status, Body: body, IsBase64Encoded: m.Echo && ev.IsBase64Encoded}, nil
}
