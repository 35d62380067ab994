using System.Diagnostics;
using System.Globalization;
using DurableStreams.Testing;
using Npgsql;

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// A throw-away primary and synchronous standby (the C# twin of <c>scripts/PostgresFailoverCluster.ps1</c>): the
/// primary is initdb'd into a temp directory, the standby is a <c>pg_basebackup -R</c> of it streaming from it, both on
/// free 127.0.0.1 ports with trust authentication, <c>synchronous_commit = on</c> and the primary's
/// <c>synchronous_standby_names</c> naming the standby (set with ALTER SYSTEM before the base backup, so the standby
/// inherits it, as a real set-up does). <see cref="KillPrimaryAsync"/> SIGKILLs the primary's postmaster by its PID;
/// <see cref="PromoteStandbyAsync"/> clears the inherited <c>synchronous_standby_names</c> on the standby and promotes it.
/// Only the postmasters started here are stopped, by their data directories.
/// </summary>
internal sealed class ReplicatedPostgres : IAsyncDisposable
{
    private const string StandbyName = "standby";
    private readonly string _bin;
    private readonly TempDirectory _directory;
    private readonly bool _asPostgres = Environment.UserName == "root";
    private bool _primaryKilled;

    private ReplicatedPostgres(string bin, TempDirectory directory)
    {
        _bin = bin;
        _directory = directory;
        PrimaryPort = PostgresServer.FreePort();
        StandbyPort = PostgresServer.FreePort();
    }

    public int PrimaryPort { get; }

    public int StandbyPort { get; }

    /// <summary>Both hosts, primary first: the store picks whichever is the read-write primary.</summary>
    public string ConnectionString =>
        $"Host=127.0.0.1:{PrimaryPort},127.0.0.1:{StandbyPort};Username=postgres;Database=postgres;Target Session Attributes=read-write";

    private string PrimaryData => _directory.Combine("primary");

    private string StandbyData => _directory.Combine("standby");

    public static async Task<ReplicatedPostgres> StartAsync(string bin, CancellationToken cancellationToken)
    {
        var directory = new TempDirectory();
        var cluster = new ReplicatedPostgres(bin, directory);
        try
        {
            await cluster.StartCoreAsync(cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync(CancellationToken cancellationToken)
    {
        if (_asPostgres)
        {
            await PostgresServer.RunAsync("chown", ["postgres", _directory.Path], asUser: false);
        }
        await RunToolAsync("initdb", "-D", PrimaryData, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync");
        await RunToolAsync("pg_ctl", "start", "-w", "-t", "60", "-D", PrimaryData, "-l", _directory.Combine("primary.log"), "-o", Settings(PrimaryPort, "primary"));
        await using (var connection = await OpenAsync(PrimaryPort, cancellationToken))
        {
            await ExecuteAsync(connection, $"ALTER SYSTEM SET synchronous_standby_names = '{StandbyName}'", cancellationToken);
            await ExecuteAsync(connection, "SELECT pg_reload_conf()", cancellationToken);
        }
        await RunToolAsync("pg_basebackup", "-h", "127.0.0.1", "-p", Port(PrimaryPort), "-U", "postgres", "-D", StandbyData, "-R", "-X", "stream", "-c", "fast");
        await RunToolAsync("pg_ctl", "start", "-w", "-t", "60", "-D", StandbyData, "-l", _directory.Combine("standby.log"), "-o", Settings(StandbyPort, StandbyName));

        // The standby connects to the primary on its own; until it is listed as synchronous, commits would wait.
        await using (var connection = await OpenAsync(PrimaryPort, cancellationToken))
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                await using var command = new NpgsqlCommand("SELECT sync_state FROM pg_stat_replication WHERE application_name = @name", connection);
                command.Parameters.AddWithValue("name", StandbyName);
                if (await command.ExecuteScalarAsync(cancellationToken) is "sync")
                {
                    break;
                }
                if (clock.Elapsed > TimeSpan.FromSeconds(30))
                {
                    throw new InvalidOperationException("The standby did not become the synchronous standby within 30 s; see " + _directory.Combine("standby.log"));
                }
                await Task.Delay(50, cancellationToken); // pg_stat_replication offers nothing to wait on
            }
        }
    }

    /// <summary>
    /// SIGKILL of the primary's postmaster (by the PID in its <c>postmaster.pid</c>) and of its children, listed
    /// before the kill: the whole server dies at once, as in a machine crash, and no shutdown code runs.
    /// </summary>
    public async Task KillPrimaryAsync()
    {
        var pid = int.Parse((await File.ReadAllLinesAsync(Path.Combine(PrimaryData, "postmaster.pid")))[0], CultureInfo.InvariantCulture);
        int[] all = [pid, .. ChildrenOf(pid)];
        foreach (var id in all)
        {
            try
            {
                using var process = Process.GetProcessById(id);
                process.Kill();
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
        _primaryKilled = true;
        // pg_ctl started the postmaster, so it is not our child: wait until none of them runs (gone or a zombie).
        var clock = Stopwatch.StartNew();
        while (all.Any(IsRunning))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10))
            {
                throw new InvalidOperationException($"The primary (postmaster PID {pid}) still runs 10 s after SIGKILL.");
            }
            await Task.Delay(10);
        }
    }

    /// <summary>
    /// Resets the <c>synchronous_standby_names</c> the standby inherited from the primary (else every commit on the
    /// promoted node would wait for a standby that does not exist), then promotes it and waits until it accepts writes.
    /// </summary>
    public async Task PromoteStandbyAsync(CancellationToken cancellationToken)
    {
        await using (var connection = await OpenAsync(StandbyPort, cancellationToken))
        {
            await ExecuteAsync(connection, "ALTER SYSTEM SET synchronous_standby_names = ''", cancellationToken);
            await ExecuteAsync(connection, "SELECT pg_reload_conf()", cancellationToken);
        }
        await RunToolAsync("pg_ctl", "promote", "-w", "-t", "60", "-D", StandbyData);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (data, skip) in new[] { (PrimaryData, _primaryKilled), (StandbyData, false) })
        {
            if (skip || !File.Exists(Path.Combine(data, "postmaster.pid")))
            {
                continue;
            }
            try
            {
                await RunToolAsync("pg_ctl", "stop", "-m", "immediate", "-w", "-D", data);
            }
            catch (InvalidOperationException)
            {
                // Deleting the directory below still removes everything; a postmaster exits when its data directory goes.
            }
        }
        _directory.Dispose();
    }

    /// <summary>postgres options; sockets go to the temp directory (not /var/run/postgresql, which may be missing or shared).</summary>
    private string Settings(int port, string name) => string.Join(' ',
        $"-p {port}", $"-k {_directory.Path}", "-c listen_addresses=127.0.0.1", "-c fsync=off", "-c full_page_writes=off",
        "-c synchronous_commit=on", $"-c cluster_name={name}", "-c max_connections=200");

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private Task RunToolAsync(string tool, params string[] arguments) =>
        PostgresServer.RunAsync(Path.Combine(_bin, tool), arguments, _asPostgres);

    private static async Task<NpgsqlConnection> OpenAsync(int port, CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=false;Timeout=5");
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static IEnumerable<int> ChildrenOf(int parent)
    {
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }
            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(directory, "stat"));
            }
            catch (IOException)
            {
                continue;
            }
            // "pid (comm) state ppid ..."
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (int.Parse(fields[1], CultureInfo.InvariantCulture) == parent)
            {
                yield return pid;
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        // /proc/<pid>/stat: "pid (comm) state ..."; a zombie (Z) no longer runs or holds its sockets.
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && state != "X";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
