// Package redistest starts a throwaway redis-server for tests.
//
// Start runs redis-server from PATH on a free port of 127.0.0.1, with
// persistence off and its working directory in the test's temporary
// directory, and stops it when the test ends. When redis-server is not
// installed, Start skips the test, or fails it when the environment variable
// CI is "true", so that CI cannot pass without running the Redis tests. On
// Debian and Ubuntu, install it with: apt-get install -y redis-server.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyLine is the log line that redis-server prints once it accepts
// connections.
const readyLine = "Ready to accept connections"

// startTimeout bounds the wait for redis-server to become ready, and
// stopTimeout the wait for it to exit after SIGTERM before it is killed.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
	startTries   = 3
)

// Server is a running redis-server.
type Server struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string
}

// Start starts a redis-server for t and registers its shutdown with
// t.Cleanup. It fails t if the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redistest: redis-server not found on PATH; install it (apt-get install -y redis-server) to run the Redis tests"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	// The port is free when chosen but may be taken before redis-server
	// binds it, so a failed start is retried on a new port.
	var lastErr error
	for range startTries {
		srv, err := startOnce(t, bin)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	t.Fatalf("redistest: %v", lastErr)
	return nil
}

func startOnce(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
	)
	out := &readyWriter{ready: make(chan struct{})}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-out.ready:
	case err := <-exited:
		return nil, fmt.Errorf("redis-server exited before it was ready (%v); output:\n%s", err, out.String())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("redis-server not ready after %v; output:\n%s", startTimeout, out.String())
	}

	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		stop := time.NewTimer(stopTimeout)
		defer stop.Stop()
		select {
		case <-exited:
		case <-stop.C:
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("redistest: redis-server did not exit within %v of SIGTERM; killed it", stopTimeout)
		}
	})
	return &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}

// readyWriter collects redis-server's output and closes ready when the
// output contains readyLine.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen && bytes.Contains(w.buf.Bytes(), []byte(readyLine)) {
		w.seen = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
