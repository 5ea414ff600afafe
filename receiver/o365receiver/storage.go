package o365receiver

import (
	"context"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// storageExtension is the configured storage extension on the host (nil when none is configured).
func storageExtension(host component.Host, id *component.ID) component.Component {
	if id == nil {
		return nil
	}
	return host.GetExtensions()[*id]
}

// storageClient looks up the configured storage extension on the host and opens this receiver's client.
func storageClient(ctx context.Context, host component.Host, id *component.ID, owner component.ID) (storage.Client, error) {
	if id == nil {
		return newMemoryClient(), nil
	}
	ext := storageExtension(host, id)
	if ext == nil {
		return nil, fmt.Errorf("`storage`: extension %q is not configured in `extensions` or not enabled in `service.extensions`", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("`storage`: extension %q is not a storage extension", id)
	}
	return se.GetClient(ctx, component.KindReceiver, owner, "")
}

// memoryClient is the storage used when none is configured: state lasts as long as the process.
type memoryClient struct {
	mu   sync.Mutex
	data map[string][]byte
}

func newMemoryClient() *memoryClient { return &memoryClient{data: map[string][]byte{}} }

func (m *memoryClient) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[key], nil
}

func (m *memoryClient) Set(_ context.Context, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = value
	return nil
}

func (m *memoryClient) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, key)
	return nil
}

func (m *memoryClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = m.data[op.Key]
		case storage.Set:
			m.data[op.Key] = op.Value
		case storage.Delete:
			delete(m.data, op.Key)
		}
	}
	return nil
}

func (m *memoryClient) Close(context.Context) error { return nil }
