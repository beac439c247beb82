package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/internal/config"
)

// claimsWanted is the set of names the tests decode.
var claimsWanted = map[string]struct{}{"exp": {}, "nbf": {}, "iat": {}, "iss": {}, "aud": {}, "sub": {}, "userId": {}, "scope": {}, "é": {}}

// decodeLikeGolangJWT decodes payload as golang-jwt does with
// WithJSONNumber: a json.Decoder with UseNumber, into v.
func decodeLikeGolangJWT(payload []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	return dec.Decode(v)
}

// checkClaimsMatch decodes payload into a MapClaims the way golang-jwt
// does and into a tokenClaims with decodeClaims, and checks that both
// accept or both refuse it, that they agree on every
// wanted claim and that the tokenClaims holds nothing else.
func checkClaimsMatch(t *testing.T, payload []byte) {
	t.Helper()
	want := jwt.MapClaims{}
	wantErr := decodeLikeGolangJWT(payload, &want)
	tc := &tokenClaims{MapClaims: jwt.MapClaims{}, wanted: claimsWanted}
	gotErr := decodeClaims(payload, tc)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("payload %q: MapClaims error %v, tokenClaims error %v", payload, wantErr, gotErr)
	}
	if wantErr != nil {
		return
	}
	for name := range want {
		if _, ok := claimsWanted[name]; !ok {
			delete(want, name)
		}
	}
	// null leaves golang-jwt's map empty (it decodes into a copy); here it
	// is nil.
	if !(len(want) == 0 && len(tc.MapClaims) == 0) && !reflect.DeepEqual(tc.MapClaims, want) {
		t.Fatalf("payload %q:\n tokenClaims %#v\n MapClaims   %#v", payload, tc.MapClaims, want)
	}
}

func TestTokenClaimsMatchMapClaims(t *testing.T) {
	for _, payload := range []string{
		`{"sub":"u1","exp":1700000000,"iat":1.7e9,"nbf":-1,"iss":"https://i","aud":["a","b"],"userId":"42"}`,
		`{"sub":"u1","other":{"deep":[1,{"x":"}]"}],"s":"\"{"},"scope":"chat:write"}`,
		`  { "sub" : "a\"b\\c\u00e9\ud83d\ude00" , "exp" : 1 }  `,
		`{"\u0073ub":"escaped key","é":"non-ASCII key","userId":123456789012345678901234567890}`,
		`{"sub":null,"exp":true,"iat":false,"aud":"one","scope":{"a":[1.5,"x",null,true]}}`,
		`{"sub":"first","sub":"last"}`,
		`{"sub":"bad utf-8 \xff\xfe"}`,
		`{"userId":"ctl\u0001","scope":""}`,
		`{}`,
		`null`,
		`{"sub":"x"} trailing`,
		`[]`, `"s"`, `1`, `{`, `{"sub"}`, `{"sub":}`, `{"sub":"x",}`, `{"sub":"x"`, `{"sub":01}`,
	} {
		checkClaimsMatch(t, []byte(payload))
	}
}

// TestTokenClaimsMalformed calls UnmarshalJSON directly with input the
// decoder would have refused, broken where the scanner or a kept value
// looks: an error, never a panic.
func TestTokenClaimsMalformed(t *testing.T) {
	for _, payload := range []string{
		``, ` `, `{`, `{"`, `{"a`, `{"a"`, `{"a":`, `{"a":"`, `{"a":"\`, `{"a":[`, `{"a":{"b":"}`, `{"sub":1x}`,
		`{"sub":-}`, `{"a":1,}`, `{"a" 1}`, `{"a":1}x`, `nul`, `{"sub":tru}`, `{"sub":[1,2}`, `{"exp":.5}`,
	} {
		tc := &tokenClaims{MapClaims: jwt.MapClaims{}, wanted: claimsWanted}
		if err := tc.UnmarshalJSON([]byte(payload)); err == nil {
			t.Errorf("UnmarshalJSON(%q) accepted invalid JSON: %v", payload, tc.MapClaims)
		}
	}
}

// TestJWTNullClaims: a token whose payload is null is refused with 401
// (no principal), as before.
func TestJWTNullClaims(t *testing.T) {
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}, RequireExp: new(bool)})
	signing := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte("null"))
	sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Verify(context.Background(), signing+"."+base64.RawURLEncoding.EncodeToString(sig))
	var d *Denial
	if !errors.As(err, &d) || d.Status != http.StatusUnauthorized {
		t.Fatalf("Verify(null payload) = %v; want a 401 Denial", err)
	}
}

// FuzzTokenClaims checks tokenClaims against MapClaims on arbitrary
// payloads, through the decoder as golang-jwt calls it, and that a direct
// call on any input returns. (A direct call may accept invalid JSON in a
// member it skips: the decoder has checked the whole value before.)
func FuzzTokenClaims(f *testing.F) {
	for _, seed := range []string{
		`{"sub":"u1","exp":1700000000,"aud":["a"],"userId":"x","other":{"a":[1,"]"]}}`,
		`{"\u0073ub":"a\nb","scope":null}`,
		`null`, `{}`, `{"sub":1e400}`, `{"é":"\xff"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		checkClaimsMatch(t, payload)
		tc := &tokenClaims{MapClaims: jwt.MapClaims{}, wanted: claimsWanted}
		_ = tc.UnmarshalJSON(payload)
	})
}

// TestJWTHeaderCache: a header is kept only after a valid signature, and a
// kept header decides nothing: a token carrying it is still verified and
// validated in full.
func TestJWTHeaderCache(t *testing.T) {
	j := newTestJWT(t, config.JWTAuth{SecretEnv: "JWT_SECRET", Algorithms: []string{"HS256"}})
	ctx := context.Background()
	forged := jwtSign(t, jwt.SigningMethodHS256, []byte("another secret"), jwtClaims(nil), map[string]any{"kid": "k1"})
	if _, err := j.Verify(ctx, forged); err == nil {
		t.Fatal("forged token accepted")
	}
	if n := len(j.headers.m); n != 0 {
		t.Fatalf("a header with a bad signature was kept (%d headers)", n)
	}
	good := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(nil), map[string]any{"kid": "k1"})
	for range 2 {
		id, err := j.Verify(ctx, good)
		if err != nil || id.PrincipalID != "user-1" {
			t.Fatalf("Verify(good) = %v, %v", id, err)
		}
	}
	if n := len(j.headers.m); n != 1 {
		t.Fatalf("%d headers kept after a good token, want 1", n)
	}
	// The same header segment as the good token, now cached: a bad
	// signature and an expired token are still refused.
	if _, err := j.Verify(ctx, forged); err == nil {
		t.Error("forged token with a cached header accepted")
	}
	expired := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), map[string]any{"kid": "k1"})
	if _, err := j.Verify(ctx, expired); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token with a cached header: %v", err)
	}
	// The cache stops growing at its bound.
	for i := range maxCachedHeaders + 10 {
		tok := jwtSign(t, jwt.SigningMethodHS256, []byte(jwtSecret), jwtClaims(nil), map[string]any{"kid": fmt.Sprint(i)})
		if _, err := j.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(j.headers.m); n != maxCachedHeaders {
		t.Errorf("%d headers kept, want the bound %d", n, maxCachedHeaders)
	}
}
