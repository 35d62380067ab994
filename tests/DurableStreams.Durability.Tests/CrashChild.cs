using System.Diagnostics;
using System.Globalization;
using System.Text;
using Xunit;

namespace DurableStreams.Durability.Tests;

/// <summary>
/// What the kill -9 tests with a workload in a child process share (RetentionCrashTests, CompactionCrashTests): the child
/// is one test method of the same assembly run by the xUnit host in its own <c>dotnet</c> process, it reports what it
/// did as lines in a log file (one write per line, so a kill tears at most the last one), and the parent kills it by
/// its PID at a seeded moment once the log shows enough progress.
/// </summary>
internal static class CrashChild
{
    /// <summary>Starts the test method <paramref name="method"/> of <paramref name="testClass"/> in a child process with <paramref name="environment"/>.</summary>
    public static Process Start(Type testClass, string method, IReadOnlyDictionary<string, string> environment)
    {
        var startInfo = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[] { testClass.Assembly.Location, "-method", testClass.FullName + "." + method, "-noLogo" })
        {
            startInfo.ArgumentList.Add(argument);
        }
        foreach (var (name, value) in environment)
        {
            startInfo.Environment[name] = value;
        }
        var process = Process.Start(startInfo) ?? throw new InvalidOperationException("dotnet did not start.");
        _ = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        _ = process.StandardError.ReadToEndAsync(CancellationToken.None);
        return process;
    }

    /// <summary>
    /// Waits until <paramref name="progressed"/> says the child has done enough in this cycle (failing after
    /// <paramref name="guard"/> or if the child exits), waits a seeded 0–400 ms more, then kills it and waits for it.
    /// </summary>
    public static async Task KillAfterProgressAsync(Process child, Func<bool> progressed, Random random, TimeSpan guard, int cycle, CancellationToken cancellationToken)
    {
        try
        {
            var started = Stopwatch.StartNew();
            while (!progressed())
            {
                Assert.True(started.Elapsed < guard && !child.HasExited, $"The child made no progress in cycle {cycle} (exited: {child.HasExited}).");
                await Task.Delay(20, cancellationToken);
            }
            await Task.Delay(random.Next(0, 400), cancellationToken);
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill(entireProcessTree: false);
            }
            await child.WaitForExitAsync(CancellationToken.None);
        }
    }

    /// <summary>Complete lines of kind <paramref name="kind"/> (their first character) after the first <paramref name="skip"/> complete lines.</summary>
    public static int CountLines(string path, int skip, char kind) =>
        File.Exists(path) ? CompleteLines(path).Skip(skip).Count(l => l[0] == kind) : 0;

    /// <summary>The log's complete lines (a line the kill tore, without its newline, is left out).</summary>
    public static List<string> CompleteLines(string path)
    {
        string text;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var reader = new StreamReader(stream, Encoding.ASCII))
        {
            text = reader.ReadToEnd();
        }
        var end = text.LastIndexOf('\n');
        return end < 0 ? [] : [.. text[..end].Split('\n')];
    }

    /// <summary>The log's complete lines, with a torn last line cut off the file so the next child's first line starts on a line of its own.</summary>
    public static List<string> CompleteLinesCuttingTorn(string path)
    {
        var lines = CompleteLines(path);
        using var file = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        file.SetLength(lines.Sum(l => l.Length + 1));
        return lines;
    }

    /// <summary>The child's side: its log, one line per write.</summary>
    public sealed class Log(string path) : IAsyncDisposable
    {
        private readonly StreamWriter _writer = new(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        private readonly SemaphoreSlim _gate = new(1, 1);

        /// <summary>Writes one line (formatted invariantly) in one write: a kill leaves at most this line torn, and the parser skips it.</summary>
        public async Task WriteAsync(FormattableString line, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken);
            try
            {
                await _writer.WriteAsync(line.ToString(CultureInfo.InvariantCulture) + "\n");
            }
            finally
            {
                _gate.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _writer.DisposeAsync();
            _gate.Dispose();
        }
    }
}
