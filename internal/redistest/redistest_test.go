package redistest

import (
	"bufio"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartServesAndStops(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		srv := Start(t)
		addr = srv.Addr

		conn, err := net.Dial("tcp", srv.Addr)
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte("PING\r\n"))
		require.NoError(t, err)
		reply, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		assert.Equal(t, "+PONG\r\n", reply)
	})
	if addr == "" {
		t.Skip("redis-server did not start")
	}

	// The subtest's cleanup stopped the server.
	conn, err := net.Dial("tcp", addr)
	if err == nil {
		conn.Close()
	}
	assert.Error(t, err, "redis-server still accepts connections after the test ended")
}
