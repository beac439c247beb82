package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
)

// CheckCSRF checks a double-submit CSRF token: the query parameter named
// queryName must equal the cookie named cookieName. A page on another site
// can make the browser send the cookie but cannot read it, so it cannot put
// the same value in the URL.
//
// It returns nil, or a 403 Denial with reason "csrf token missing" when
// either half is absent or empty and "csrf token mismatch" otherwise. Of a
// repeated query parameter the last value counts, as for identity sources.
// When the request carries several cookies of that name, every one must
// equal the query value: a cookie planted from a sibling subdomain, which
// the browser may send first, cannot stand in for the real one. The
// comparison takes time that does not depend on where the values differ or
// on their lengths.
func CheckCSRF(h http.Header, q url.Values, cookieName, queryName string) error {
	want := lastValue(q, queryName)
	cookies := (&http.Request{Header: h}).CookiesNamed(cookieName)
	if want == "" || len(cookies) == 0 {
		return Forbidden("csrf token missing")
	}
	wantSum := sha256.Sum256([]byte(want))
	equal := 1
	for _, c := range cookies {
		if c.Value == "" {
			return Forbidden("csrf token missing")
		}
		gotSum := sha256.Sum256([]byte(c.Value))
		equal &= subtle.ConstantTimeCompare(wantSum[:], gotSum[:])
	}
	if equal != 1 {
		return Forbidden("csrf token mismatch")
	}
	return nil
}
