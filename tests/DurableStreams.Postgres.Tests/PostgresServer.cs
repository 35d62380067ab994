using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DurableStreams.Testing;
using Xunit;

[assembly: AssemblyFixture(typeof(DurableStreams.Postgres.Tests.PostgresServer))]

namespace DurableStreams.Postgres.Tests;

/// <summary>
/// A throw-away PostgreSQL cluster for the whole test run: <c>initdb</c> into a temp directory and <c>pg_ctl</c> on a
/// free 127.0.0.1 port (as the <c>postgres</c> user when the tests run as root), stopped and deleted at the end.
/// Tests take one schema each, so they run in parallel on one server. Where no PostgreSQL binaries are found the
/// tests skip themselves with the reason, except under <c>CI=true</c>, where they fail; a cluster that was found but
/// did not start (initdb or <c>pg_ctl start</c> failed) fails them everywhere. <c>DS_PG_BIN</c> names the binaries'
/// directory explicitly (and only it is tried).
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private TempDirectory? _directory;
    private string? _bin;
    private int _schemas;

    /// <summary>Why no server runs (binaries missing or start failed), or null when it runs.</summary>
    public string? UnavailableReason { get; private set; }

    /// <summary>True when the binaries were found but the cluster did not start: a failure, never a skip.</summary>
    public bool StartFailed { get; private set; }

    public int Port { get; private set; }

    /// <summary>The directory of the PostgreSQL binaries (initdb, pg_ctl, psql, pg_dump), or null when none was found.</summary>
    public string? BinDirectory => _bin;

    /// <summary>A connection string for another database of the test cluster.</summary>
    public string ConnectionStringFor(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Maximum Pool Size=20;Timeout=5;Command Timeout=30";

    /// <summary>Runs a PostgreSQL client tool of <see cref="BinDirectory"/> (psql, pg_dump) against the test cluster; throws on a non-zero exit.</summary>
    public Task RunClientToolAsync(string tool, params string[] arguments) =>
        RunAsync(Path.Combine(_bin ?? throw new InvalidOperationException("No PostgreSQL binaries."), tool), ["-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", .. arguments], asUser: false);

    /// <summary>
    /// Creates the database <paramref name="database"/> and restores the dump <c>Fixtures/<paramref name="fixture"/></c>
    /// into it; returns its connection string.
    /// </summary>
    public async Task<string> RestoreFixtureAsync(string fixture, string database)
    {
        await RunClientToolAsync("psql", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", $"CREATE DATABASE {database}");
        await RunClientToolAsync("psql", "-d", database, "-v", "ON_ERROR_STOP=1", "-q", "-f", Path.Combine(AppContext.BaseDirectory, "Fixtures", fixture));
        return ConnectionStringFor(database);
    }

    /// <summary>A connection string for the test cluster (trust authentication, user postgres).</summary>
    public string ConnectionString =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Maximum Pool Size=20;Timeout=5;Command Timeout=30";

    /// <summary>
    /// Skips the calling test when no PostgreSQL binaries are installed (fails it under <c>CI=true</c>); fails it when
    /// the binaries are there but the cluster did not start.
    /// </summary>
    public void SkipIfUnavailable()
    {
        if (UnavailableReason is not { } reason)
        {
            return;
        }
        if (StartFailed)
        {
            Assert.Fail(reason);
        }
        TestEnvironment.SkipOrFailUnderCI(reason);
    }

    /// <summary>A schema name no other test uses.</summary>
    public string NewSchema(string prefix = "t") => $"{prefix}_{Environment.ProcessId}_{Interlocked.Increment(ref _schemas)}";

    public async ValueTask InitializeAsync()
    {
        _bin = FindBinaries();
        if (_bin is null)
        {
            UnavailableReason = "PostgreSQL binaries (initdb, pg_ctl) were not found; install postgresql-15 or set DS_PG_BIN.";
            return;
        }
        _directory = new TempDirectory();
        var data = _directory.Combine("data");
        var asPostgres = Environment.UserName == "root";
        if (asPostgres)
        {
            await RunAsync("chown", ["postgres", _directory.Path], asUser: false);
        }
        Port = FreePort();
        try
        {
            await RunAsync(Path.Combine(_bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], asPostgres);
            string[] settings =
            [
                $"-p {Port}", $"-k {_directory.Path}", "-c listen_addresses=127.0.0.1", "-c fsync=off",
                "-c synchronous_commit=off", "-c full_page_writes=off", "-c max_connections=400",
            ];
            await RunAsync(Path.Combine(_bin, "pg_ctl"), ["start", "-w", "-t", "60", "-D", data, "-l", _directory.Combine("server.log"), "-o", string.Join(' ', settings)], asPostgres);
        }
        catch (InvalidOperationException ex)
        {
            UnavailableReason = "The test PostgreSQL did not start: " + ex.Message;
            StartFailed = true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_directory is null || _bin is null)
        {
            return;
        }
        if (UnavailableReason is null)
        {
            try
            {
                await RunAsync(Path.Combine(_bin, "pg_ctl"), ["stop", "-m", "immediate", "-w", "-D", _directory.Combine("data")], Environment.UserName == "root");
            }
            catch (InvalidOperationException)
            {
                // Deleting the directory below still removes everything; the postmaster exits when its data directory goes.
            }
        }
        _directory.Dispose();
    }

    private static string? FindBinaries()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("DS_PG_BIN") is { Length: > 0 } explicitBin)
        {
            // An explicit directory is the only one tried (DS_PG_BIN=none runs the suite as if PostgreSQL were absent).
            return File.Exists(Path.Combine(explicitBin, "initdb")) && File.Exists(Path.Combine(explicitBin, "pg_ctl")) ? explicitBin : null;
        }
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin")));
        }
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")));
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static async Task RunAsync(string file, string[] arguments, bool asUser)
    {
        var start = new ProcessStartInfo(asUser ? "runuser" : file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (asUser)
        {
            foreach (var a in (string[])["-u", "postgres", "--", file])
            {
                start.ArgumentList.Add(a);
            }
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} exited with {process.ExitCode}: {await stderr}{await stdout}");
        }
    }
}
