// Package servicetest starts the external services tests need, such as a
// redis-server child process on a free local port, and stops them when the
// test ends. A service whose program is not installed skips the test,
// unless WSGATE_REQUIRE_SERVICES=1 asks for it to fail instead, as CI does.
package servicetest
