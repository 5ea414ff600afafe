//go:build !unix

package sqlstorageextension

// Without flock, no owner is presumed dead: leases of a crashed replica expire after `lease.ttl`.

func holdLiveness(string, string) (func(), error) { return func() {}, nil }

func dead(string, string) bool { return false }
