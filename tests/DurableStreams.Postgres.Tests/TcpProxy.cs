using System.Net;
using System.Net.Sockets;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// A loopback TCP forwarder in front of the test PostgreSQL, so a test can make the database unreachable (refuse new
/// connections and cut open ones) and reachable again on the same port.
/// </summary>
internal sealed class TcpProxy : IAsyncDisposable
{
    private readonly int _targetPort;
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;
    private CancellationTokenSource? _accepting;

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        Accept();
    }

    public int Port { get; }

    /// <summary>Stops listening and cuts every forwarded connection.</summary>
    public void Cut()
    {
        _accepting?.Cancel();
        _listener?.Stop();
        _listener = null;
        lock (_open)
        {
            foreach (var client in _open)
            {
                try
                {
                    // Reset rather than close, as a dead host or a cut cable looks to the client.
                    if (client.Client is { } socket)
                    {
                        socket.LingerState = new LingerOption(true, 0);
                    }
                }
                catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
                {
                    // Already closed by its pump.
                }
                client.Dispose();
            }
            _open.Clear();
        }
    }

    /// <summary>Listens again on the same port.</summary>
    public void Restore()
    {
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        Accept();
    }

    private void Accept()
    {
        var listener = _listener!;
        _accepting = new CancellationTokenSource();
        var token = _accepting.Token;
        _ = Task.Run(async () =>
        {
            while (!token.IsCancellationRequested)
            {
                TcpClient inbound;
                try
                {
                    inbound = await listener.AcceptTcpClientAsync(token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                var outbound = new TcpClient();
                try
                {
                    await outbound.ConnectAsync(IPAddress.Loopback, _targetPort, token);
                }
                catch (Exception ex) when (ex is OperationCanceledException or SocketException)
                {
                    inbound.Dispose();
                    outbound.Dispose();
                    continue;
                }
                lock (_open)
                {
                    _open.Add(inbound);
                    _open.Add(outbound);
                }
                _ = PumpAsync(inbound, outbound);
                _ = PumpAsync(outbound, inbound);
            }
        }, token);
    }

    private static async Task PumpAsync(TcpClient from, TcpClient to)
    {
        try
        {
            await from.GetStream().CopyToAsync(to.GetStream());
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Cut by the test or closed by either side.
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Cut();
        _accepting?.Dispose();
        return ValueTask.CompletedTask;
    }
}
