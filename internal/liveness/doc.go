// Package liveness drops registrations whose service has gone away.
//
// A service that crashes leaves its mapping behind, and since SET never
// overwrites, its restart cannot register again until someone unsets the
// old entry. When enabled, a Checker calls procedure 0 (NULL) of each
// registered service on its own transport at an interval; a mapping whose
// port fails to answer several times in a row is removed, logged and
// counted. Any RPC reply, an error reply included, proves the service is
// there.
package liveness
