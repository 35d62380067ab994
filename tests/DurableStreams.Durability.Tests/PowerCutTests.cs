using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using DurableStreams.Testing;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// Power cuts under LazyFS (a FUSE file system that drops every unsynced write on command): <c>serve</c> runs on a
/// LazyFS mount while idempotent producers append; the server is SIGKILLed, LazyFS drops its unsynced data, and the
/// server starts again. After every cut each acknowledged append is present exactly once, each producer's retry of its
/// in-flight append is applied at most once, and each producer's (epoch, seq) matches its data: its next seq is
/// accepted and an earlier one is a duplicate.
/// <para>
/// Needs LazyFS, which CI cannot build: set <c>DS_LAZYFS</c> to the <c>lazyfs</c> binary to run it (as root, with
/// <c>/dev/fuse</c>); otherwise it is skipped. Category <c>PowerCut</c>.
/// </para>
/// </summary>
[Trait("Category", "PowerCut")]
public sealed class PowerCutTests : IDisposable
{
    private const int Seed = 20261206;
    private const int Cuts = 5;
    private const int ActiveProducers = 6;
    private const int IdleProducers = 200;
    private readonly TempDirectory _directory = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed class Producer(string stream, string id)
    {
        public string Stream { get; } = stream;
        public string Id { get; } = id;
        public long Epoch { get; set; }
        /// <summary>The next seq to send.</summary>
        public long Seq { get; set; }
        /// <summary>Acknowledged or confirmed (epoch, seq) pairs, in order: each must be in the stream exactly once.</summary>
        public List<(long Epoch, long Seq)> Confirmed { get; } = [];
        /// <summary>The append in flight when the server died, if any.</summary>
        public (long Epoch, long Seq)? InFlight { get; set; }

        public string Body(long epoch, long seq) => $"{Id}:{epoch}:{seq};";
    }

    [Fact]
    public async Task Acknowledged_producer_appends_survive_power_cuts_exactly_once_with_consistent_producer_state()
    {
        var lazyfs = Environment.GetEnvironmentVariable("DS_LAZYFS");
        Assert.SkipWhen(string.IsNullOrEmpty(lazyfs), "Set DS_LAZYFS to the lazyfs binary to run the power-cut tests.");
        await using var mount = await LazyFsMount.StartAsync(lazyfs!, _directory.Path, Ct);
        var data = Path.Combine(mount.MountPoint, "data");
        var random = new Random(Seed);
        var producers = new List<Producer>();
        for (var i = 0; i < ActiveProducers; i++)
        {
            producers.Add(new Producer(i % 2 == 0 ? "even" : "odd", $"active-{i}"));
        }
        var server = await ServerProcess.StartAsync(data, Ct);
        try
        {
            foreach (var stream in new[] { "even", "odd", "idle" })
            {
                using var put = new HttpRequestMessage(HttpMethod.Put, server.StreamUrl(stream)) { Content = Text("") };
                Assert.Equal(HttpStatusCode.Created, (await _http.SendAsync(put, Ct)).StatusCode);
            }
            // Many producers on one stream: their records must all survive, whatever is rewritten around them.
            for (var i = 0; i < IdleProducers; i++)
            {
                Assert.Equal(HttpStatusCode.OK, await PostAsync(server, "idle", $"idle-{i:D3}-" + new string('x', 200), 3, 0, "i;"));
            }
            for (var cut = 0; cut < Cuts; cut++)
            {
                if (cut == 2)
                {
                    // A new epoch before a cut: its (epoch, 0) must come back, not the older epoch's seq.
                    producers[0].Epoch++;
                    producers[0].Seq = 0;
                }
                // The cut comes while every producer has an append in flight (or just acknowledged).
                var current = server;
                var running = producers.Select(p => RunAsync(current, p)).ToArray();
                await Task.Delay(random.Next(300, 2500), Ct);
                await server.KillAsync();
                await Task.WhenAll(running);
                await mount.ClearCacheAsync(Ct);
                await server.DisposeAsync();
                server = await ServerProcess.StartAsync(data, Ct);
                await VerifyAsync(server, producers, cut);
            }
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    /// <summary>Appends the producer's next seq until the server dies; the append in flight then stays in flight.</summary>
    private async Task RunAsync(ServerProcess server, Producer producer)
    {
        while (true)
        {
            var (epoch, seq) = (producer.Epoch, producer.Seq);
            producer.InFlight = (epoch, seq);
            HttpStatusCode status;
            try
            {
                status = await PostAsync(server, producer.Stream, producer.Id, epoch, seq, producer.Body(epoch, seq));
            }
            catch (HttpRequestException)
            {
                return;
            }
            Assert.Equal(HttpStatusCode.OK, status);
            producer.InFlight = null;
            producer.Confirmed.Add((epoch, seq));
            producer.Seq++;
        }
    }

    private async Task VerifyAsync(ServerProcess server, List<Producer> producers, int cut)
    {
        foreach (var producer in producers)
        {
            if (producer.InFlight is { } inFlight)
            {
                // Retried after the cut: 200 if the cut lost it (applied now), 204 if it was durable; once either way.
                var retry = await PostAsync(server, producer.Stream, producer.Id, inFlight.Epoch, inFlight.Seq, producer.Body(inFlight.Epoch, inFlight.Seq));
                TestContext.Current.TestOutputHelper?.WriteLine($"cut {cut}: {producer.Id} in flight {inFlight} retried: {(int)retry}; {producer.Confirmed.Count} acknowledged so far");
                Assert.True(retry is HttpStatusCode.OK or HttpStatusCode.NoContent, $"cut {cut}: retry of {producer.Id} {inFlight} answered {retry}");
                producer.InFlight = null;
                producer.Confirmed.Add(inFlight);
                producer.Seq = inFlight.Seq + 1;
            }
            if (producer.Confirmed.Count > 0)
            {
                // The producer state matches the data: the last confirmed seq is a duplicate.
                var (epoch, seq) = producer.Confirmed[^1];
                Assert.Equal(HttpStatusCode.NoContent, await PostAsync(server, producer.Stream, producer.Id, epoch, seq, producer.Body(epoch, seq)));
            }
        }
        foreach (var stream in new[] { "even", "odd" })
        {
            var tokens = (await ReadAllAsync(server, stream)).Split(';', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(tokens.Length, tokens.Distinct(StringComparer.Ordinal).Count());
            foreach (var producer in producers.Where(p => p.Stream == stream))
            {
                var expected = producer.Confirmed.Select(c => producer.Body(c.Epoch, c.Seq).TrimEnd(';')).ToArray();
                var actual = tokens.Where(t => t.StartsWith(producer.Id + ":", StringComparison.Ordinal)).ToArray();
                Assert.Equal(expected, actual);
            }
        }
        for (var i = 0; i < IdleProducers; i += 7)
        {
            Assert.Equal(HttpStatusCode.NoContent, await PostAsync(server, "idle", $"idle-{i:D3}-" + new string('x', 200), 3, 0, "i;"));
        }
        Assert.Equal(new string('i', IdleProducers), (await ReadAllAsync(server, "idle")).Replace(";", "", StringComparison.Ordinal));
    }

    private async Task<HttpStatusCode> PostAsync(ServerProcess server, string stream, string id, long epoch, long seq, string body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, server.StreamUrl(stream)) { Content = Text(body) };
        request.Headers.Add("Producer-Id", id);
        request.Headers.Add("Producer-Epoch", epoch.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("Producer-Seq", seq.ToString(CultureInfo.InvariantCulture));
        using var response = await _http.SendAsync(request, Ct);
        return response.StatusCode;
    }

    private async Task<string> ReadAllAsync(ServerProcess server, string stream)
    {
        var text = new StringBuilder();
        var offset = "-1";
        while (true)
        {
            using var response = await _http.GetAsync(new Uri(server.StreamUrl(stream) + "?offset=" + offset), Ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            text.Append(await response.Content.ReadAsStringAsync(Ct));
            offset = response.Headers.GetValues("Stream-Next-Offset").Single();
            if (response.Headers.TryGetValues("Stream-Up-To-Date", out var upToDate) && upToDate.Single() == "true")
            {
                return text.ToString();
            }
        }
    }

    private static StringContent Text(string body) => new(body, Encoding.UTF8, "text/plain");

    public void Dispose()
    {
        _http.Dispose();
        _directory.Dispose();
    }

    /// <summary>A LazyFS mount over a directory of the test's temp directory, started and unmounted by the test.</summary>
    internal sealed class LazyFsMount : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly FileStream _completed;
        private readonly string _fifo;

        private LazyFsMount(Process process, string mountPoint, string fifo, FileStream completed)
        {
            _process = process;
            MountPoint = mountPoint;
            _fifo = fifo;
            _completed = completed;
        }

        public string MountPoint { get; }

        public static async Task<LazyFsMount> StartAsync(string binary, string directory, CancellationToken cancellationToken)
        {
            var root = Directory.CreateDirectory(Path.Combine(directory, "root")).FullName;
            var mountPoint = Directory.CreateDirectory(Path.Combine(directory, "mnt")).FullName;
            var fifo = Path.Combine(directory, "fifo");
            var done = Path.Combine(directory, "fifo.done");
            foreach (var path in new[] { fifo, done })
            {
                using var mkfifo = Process.Start("mkfifo", [path]);
                await mkfifo.WaitForExitAsync(cancellationToken);
                Assert.Equal(0, mkfifo.ExitCode);
            }
            var config = Path.Combine(directory, "lazyfs.toml");
            await File.WriteAllTextAsync(config, $"""
                [faults]
                fifo_path="{fifo}"
                fifo_path_completed="{done}"
                [cache]
                apply_eviction=false
                [cache.simple]
                custom_size="512mb"
                blocks_per_page=1
                [filesystem]
                logfile="{Path.Combine(directory, "lazyfs.log")}"
                logall=false
                """, cancellationToken);
            var startInfo = new ProcessStartInfo(binary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var argument in new[] { mountPoint, "--config-path", config, "-o", "allow_other", "-o", "modules=subdir", "-o", "subdir=" + root, "-f" })
            {
                startInfo.ArgumentList.Add(argument);
            }
            var process = Process.Start(startInfo)!;
            _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
            // LazyFS answers no command until its completion FIFO has a reader; read-write does not block on open.
            var completed = new FileStream(done, FileMode.Open, FileAccess.ReadWrite);
            var deadline = Stopwatch.StartNew();
            while (!(await File.ReadAllTextAsync("/proc/self/mounts", cancellationToken)).Contains(" " + mountPoint + " ", StringComparison.Ordinal))
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited, "LazyFS did not mount.");
                await Task.Delay(100, cancellationToken);
            }
            return new LazyFsMount(process, mountPoint, fifo, completed);
        }

        /// <summary>Drops every write not yet synced, as a power cut would; returns once LazyFS reports it done.</summary>
        public async Task ClearCacheAsync(CancellationToken cancellationToken)
        {
            await File.WriteAllTextAsync(_fifo, "lazyfs::clear-cache\n", cancellationToken);
            var buffer = new byte[256];
            var read = await _completed.ReadAsync(buffer, cancellationToken);
            Assert.Contains("clear-cache", Encoding.ASCII.GetString(buffer, 0, read), StringComparison.Ordinal);
        }

        public async ValueTask DisposeAsync()
        {
            using (var unmount = Process.Start("fusermount3", ["-u", MountPoint]))
            {
                await unmount.WaitForExitAsync(CancellationToken.None);
            }
            if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                _process.Kill();
            }
            _process.Dispose();
            await _completed.DisposeAsync();
        }
    }
}
