namespace DurableStreams.PowerShell.Internal;

/// <summary>The servers started in this process; stopped on Stop-DurableStreamServer, Remove-Module and process exit.</summary>
internal static class ServerRegistry
{
    /// <summary>How long a graceful stop may take before open connections are dropped.</summary>
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private static readonly Lock s_gate = new();
    private static readonly List<DurableStreamServerInfo> s_servers = [];
    private static int s_nextId;

    public static int NextId() => Interlocked.Increment(ref s_nextId);

    public static void Add(DurableStreamServerInfo server)
    {
        lock (s_gate)
        {
            s_servers.Add(server);
        }
    }

    public static IReadOnlyList<DurableStreamServerInfo> Running()
    {
        lock (s_gate)
        {
            return [.. s_servers];
        }
    }

    /// <summary>Stops the server and closes its store; false when it was not running.</summary>
    public static async Task<bool> StopAsync(DurableStreamServerInfo server)
    {
        lock (s_gate)
        {
            if (!s_servers.Remove(server))
            {
                return false;
            }
            server.IsRunning = false;
        }
        // Open connections still there after the timeout are dropped by the disposal, which then closes the
        // subscription state and the store.
        await server.Host.StopAsync(StopTimeout);
        await server.Host.DisposeAsync();
        return true;
    }

    /// <summary>Stops every server (module removal, process exit). Never throws.</summary>
    public static void StopAll()
    {
        foreach (var server in Running())
        {
            try
            {
                StopAsync(server).GetAwaiter().GetResult();
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or ObjectDisposedException or OperationCanceledException)
            {
                // Best effort while the module or the process goes away.
            }
        }
    }
}
