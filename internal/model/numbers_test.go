package model

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestValidateOutOfRangeNumbers: a number whose exponent math/big refuses
// to expand (beyond 10^±1000000) is a valid JSON number; a schema that
// compares it (minimum, multipleOf, uniqueItems over more than 20 items)
// must answer, not panic. The gateway runs validation on a worker goroutine
// without recover: a panic there ends the process, every connection with
// it.
func TestValidateOutOfRangeNumbers(t *testing.T) {
	var many strings.Builder
	for i := range 25 {
		fmt.Fprintf(&many, "%d,", i)
	}
	tests := []struct{ name, schema, body, want string }{
		{"minimum", `{"properties":{"n":{"minimum":0}}}`, `{"n":1e1000001}`, "/n: number out of range"},
		{"maximum tiny", `{"properties":{"n":{"maximum":0}}}`, `{"n":-1e-1000001}`, "/n: number out of range"},
		{"multipleOf", `{"properties":{"n":{"multipleOf":3}}}`, `{"n":1E+2000000}`, "/n: number out of range"},
		{"uniqueItems", `{"uniqueItems":true}`, `[` + many.String() + `2e1000001]`, "/25: number out of range"},
		{"zero with an exponent overflowing int64", `{"properties":{"n":{"minimum":0}}}`, `{"n":0e-99999999999999999999}`, "/n: number out of range"},
		{"exponent overflowing int64", `{"properties":{"n":{"minimum":0}}}`, `{"n":1e99999999999999999999}`, "/n: number out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("Validate panicked: %v", r)
					}
				}()
				err = Single(mustCompile(t, tt.schema)).Validate([]byte(tt.body))
			}()
			var inv *Invalid
			if !errors.As(err, &inv) || inv.Detail != tt.want {
				t.Fatalf("Validate: %v, want the detail %q", err, tt.want)
			}
		})
	}
}

// TestValidateNumbersInRange: numbers of ordinary and large magnitudes,
// written in any JSON form, are judged by the schema as before.
func TestValidateNumbersInRange(t *testing.T) {
	tests := []struct {
		schema, body string
		valid        bool
	}{
		{`{"properties":{"n":{"minimum":0}}}`, `{"n":1e1000}`, true},
		{`{"properties":{"n":{"maximum":0}}}`, `{"n":-1e-1000}`, true},
		{`{"properties":{"n":{"type":"integer"}}}`, `{"n":1.000000000000000000000000000000e1}`, true},
		{`{"properties":{"n":{"type":"integer"}}}`, `{"n":0.000000000000000000000000000001e-1}`, false},
		{`{"properties":{"n":{"type":"integer"}}}`, `{"n":10000000000000000000000000000000000000e-37}`, true},
		{`{"properties":{"n":{"minimum":0}}}`, `{"n":0.0e-5000}`, true},
		{`{"properties":{"n":{"maximum":0}}}`, `{"n":-0e99999999}`, true},
		{`{"properties":{"n":{"multipleOf":0.01}}}`, `{"n":-12.34}`, true},
		{`{"properties":{"n":{"multipleOf":0.01}}}`, `{"n":1.2345E1}`, false},
	}
	for _, tt := range tests {
		err := Single(mustCompile(t, tt.schema)).Validate([]byte(tt.body))
		if (err == nil) != tt.valid {
			t.Errorf("%s against %s: %v, want valid %v", tt.body, tt.schema, err, tt.valid)
		}
	}
}

// TestValidateHugeExponentsBounded: every comparison of a number expands
// it to an exact fraction; exponents up to a million are accepted by
// math/big and take tens of milliseconds each, so a message holding
// thousands of them would keep a core busy for hours. A message is judged
// in time linear in its size.
func TestValidateHugeExponentsBounded(t *testing.T) {
	body := "[" + strings.TrimSuffix(strings.Repeat("1e999999,", 200), ",") + "]"
	s := Single(mustCompile(t, `{"items":{"type":"integer"}}`))
	done := make(chan error, 1)
	go func() { done <- s.Validate([]byte(body)) }()
	select {
	case err := <-done:
		var inv *Invalid
		if !errors.As(err, &inv) || inv.Detail != "/0: number out of range" {
			t.Fatalf("Validate: %v, want /0: number out of range", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Validate of 200 numbers of exponent 999999 takes more than 2s")
	}
}
