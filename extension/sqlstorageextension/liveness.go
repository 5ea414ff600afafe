package sqlstorageextension

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"

	"go.uber.org/zap"
)

// With SQLite every replica runs on the machine that holds the file, so whether a lease's owner is
// alive can be asked of the operating system instead of waiting for its lease to expire: each replica
// holds an exclusive advisory lock (flock) on a file of its own for as long as its process lives, and
// the kernel drops the lock when the process dies, however it dies (kill -9, OOM). At start, a replica
// expires the leases of every owner whose lock it can take — a predecessor killed without releasing
// them — so a collector restarted after a crash polls at once rather than after `lease.ttl`. Fencing
// is unchanged: a dead process writes nothing.

// livenessDir holds the replicas' lock files, next to the database.
func livenessDir(dbPath string) string { return dbPath + ".replicas" }

func lockFile(dir, replicaID string) string {
	sum := sha256.Sum256([]byte(replicaID))
	return filepath.Join(dir, hex.EncodeToString(sum[:12])+".lock")
}

// reapDeadOwners expires the unexpired leases of owners whose process is gone.
func (e *sqlStorage) reapDeadOwners(ctx context.Context) error {
	db, err := e.database()
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, e.q.leaseOwners)
	if err != nil {
		return err
	}
	var owners []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			_ = rows.Close()
			return err
		}
		owners = append(owners, o)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	dir := livenessDir(e.cfg.Path)
	for _, o := range owners {
		if o == e.replicaID || !dead(dir, o) {
			continue
		}
		res, err := db.ExecContext(ctx, e.q.leaseExpireOwner, o)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		e.logger.Info("Leases of a replica that is no longer running are free at once", zap.String("owner", o), zap.Int64("leases", n))
	}
	return nil
}
