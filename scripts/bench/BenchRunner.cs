using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace DurableStreams.Bench;

/// <summary>Starts the servers, runs the scenarios round-robin across them and prints the table of medians.</summary>
internal static class BenchRunner
{
    public static async Task<int> RunAsync(BenchOptions options)
    {
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        // SIGTERM too: stop the running cell, then the servers, instead of leaving them orphaned.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            cancel.Cancel();
        });

        // Scenarios 19 and 20 hold thousands of sockets: raise this process's file limit (soft to hard); the servers
        // it starts inherit the raised limit.
        if (FileLimit.RaiseToHard() is { } limit)
        {
            Log($"open file limit: {limit}");
        }

        foreach (var scenario in options.Scenarios.Where(s => WrkScenarios.MissingFor(s) is not null).ToList())
        {
            if (options.ScenariosGiven)
            {
                await Console.Error.WriteLineAsync($"Scenario {scenario} cannot run: {WrkScenarios.MissingFor(scenario)}.");
                return 2;
            }

            Log($"skipping scenario {scenario}: {WrkScenarios.MissingFor(scenario)}");
            options.Scenarios = [.. options.Scenarios.Where(s => s != scenario)];
        }

        BenchPaths paths;
        try
        {
            paths = BenchPaths.Locate(options.OursDll);
        }
        catch (InvalidOperationException ex)
        {
            await Console.Error.WriteLineAsync(ex.Message);
            return 2;
        }

        var unavailable = new Dictionary<string, string>();
        var running = new Dictionary<string, ServerProcess>();
        var everStarted = new HashSet<string>();
        var results = new Dictionary<(int Scenario, string Server), List<CellResult>>();
        var runId = Guid.NewGuid().ToString("N")[..8];
        var started = Stopwatch.GetTimestamp();
        var versions = new List<string>();
        string? oursSnapshot = null;
        try
        {
            if (options.Servers.Any(s => s.IsOurs))
            {
                await PrepareOursAsync(options, paths, unavailable, cancel.Token);
                if (options.Servers.Any(s => s.IsOurs && !unavailable.ContainsKey(s.Name)))
                {
                    // Run ours from a private copy: other builds may rewrite artifacts/ while the benchmark runs.
                    oursSnapshot = Directory.CreateTempSubdirectory("ds-bench-ours-bin-").FullName;
                    CopyDirectory(Path.GetDirectoryName(paths.OursDll)!, oursSnapshot);
                    var built = File.GetLastWriteTimeUtc(paths.OursDll).ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
                    versions.Add($"ours = {Path.GetRelativePath(paths.Root, paths.OursDll)} built {built}");
                    Log($"ours: {paths.OursDll} (built {built}), copied to {oursSnapshot}");
                    paths = paths.WithOursDll(Path.Combine(oursSnapshot, Path.GetFileName(paths.OursDll)));
                }
            }

            if (options.Servers.Any(s => !s.IsOurs))
            {
                await PrepareReferenceAsync(paths, unavailable, versions, cancel.Token);
            }

            if (options.ReuseServers)
            {
                foreach (var spec in options.Servers.Where(s => !unavailable.ContainsKey(s.Name)))
                {
                    if (await TryStartAsync(spec, paths, options, unavailable, cancel.Token) is { } server)
                    {
                        running[spec.Name] = server;
                    }
                }
            }

            for (var rep = 0; rep < options.Repeat && !cancel.IsCancellationRequested; rep++)
            {
                foreach (var scenario in options.Scenarios)
                {
                    // Round-robin: every server takes its turn in every repetition; the starting server rotates.
                    var servers = options.Servers.ToList();
                    var order = servers.Skip(rep % servers.Count).Concat(servers.Take(rep % servers.Count)).ToList();
                    foreach (var spec in order)
                    {
                        if (cancel.IsCancellationRequested)
                        {
                            break;
                        }

                        if (unavailable.ContainsKey(spec.Name))
                        {
                            continue;
                        }

                        // By default every cell gets a fresh server with an empty store, so no scenario inherits
                        // another's streams, data or open files; --reuse-servers keeps one server per kind instead.
                        var server = options.ReuseServers
                            ? running[spec.Name]
                            : await TryStartAsync(spec, paths, options, unavailable, cancel.Token, everStarted.Contains(spec.Name));
                        if (server is null)
                        {
                            if (unavailable.ContainsKey(spec.Name))
                            {
                                continue;
                            }

                            Record(results, scenario, spec, CellResult.Failed($"{spec.Name} did not start"));
                            continue;
                        }

                        everStarted.Add(spec.Name);
                        CellResult result;
                        try
                        {
                            result = await RunCellAsync(server, paths, runId, scenario, rep, options, cancel.Token);
                        }
                        finally
                        {
                            if (!options.ReuseServers)
                            {
                                await server.DisposeAsync();
                            }
                        }

                        Record(results, scenario, spec, result);
                        Log($"rep {rep + 1}/{options.Repeat} scenario {scenario} {spec.Name,-11} {Describe(scenario, result)}");
                        if (result.Failure is not null && server.RecentOutput is { Length: > 0 } recent)
                        {
                            Log($"last output of {spec.Name}:{Environment.NewLine}{recent}");
                        }
                    }
                }
            }
        }
        finally
        {
            foreach (var server in running.Values)
            {
                await server.DisposeAsync();
            }

            if (oursSnapshot is not null)
            {
                Directory.Delete(oursSnapshot, recursive: true);
            }
        }

        var elapsed = Stopwatch.GetElapsedTime(started);
        var report = Report(options, results, unavailable, versions, elapsed, cancel.IsCancellationRequested);
        Console.WriteLine(report);
        if (options.OutputFile is { } output)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(output)!);
            await File.WriteAllTextAsync(output, report, CancellationToken.None);
        }

        return results.Values.Any(list => list.Any(r => r.Failure is not null)) || cancel.IsCancellationRequested ? 1 : 0;
    }

    /// <summary>
    /// Starts a server. A server that never started is marked unavailable (with the reason) and null is returned; one
    /// that started before and fails now only costs its cell.
    /// </summary>
    private static async Task<ServerProcess?> TryStartAsync(
        ServerSpec spec, BenchPaths paths, BenchOptions options, Dictionary<string, string> unavailable, CancellationToken cancellationToken, bool startedBefore = false)
    {
        ServerProcess server;
        try
        {
            server = await ServerProcess.StartAsync(spec, paths, cancellationToken);
            if (!startedBefore)
            {
                Log($"started {spec.Name} (pid {server.Pid}) at {server.BaseUri}");
            }
        }
        catch (InvalidOperationException ex)
        {
            Log($"{spec.Name} did not start: {ex.Message}");
            if (!startedBefore)
            {
                unavailable[spec.Name] = ex.Message;
            }

            return null;
        }

        try
        {
            await ServerWarmup.RunAsync(server, TimeSpan.FromSeconds(options.ServerWarmupSeconds), cancellationToken);
            return server;
        }
        catch (Exception ex) when (ex is BenchFailureException or HttpRequestException or IOException)
        {
            Log($"{spec.Name} failed its warm-up: {ex.Message}{Environment.NewLine}{spec.Name}'s last output:{Environment.NewLine}{server.RecentOutput}");
            await server.DisposeAsync();
            return null;
        }
    }

    private static void Record(Dictionary<(int Scenario, string Server), List<CellResult>> results, int scenario, ServerSpec spec, CellResult result)
    {
        if (!results.TryGetValue((scenario, spec.Name), out var list))
        {
            results[(scenario, spec.Name)] = list = [];
        }

        list.Add(result);
    }

    private static async Task<CellResult> RunCellAsync(
        ServerProcess server, BenchPaths paths, string runId, int scenario, int rep, BenchOptions options, CancellationToken cancellationToken)
    {
        if (server.HasExited)
        {
            return CellResult.Failed($"{server.Spec.Name} has exited. Output:{Environment.NewLine}{server.RecentOutput}");
        }

        var context = new CellContext
        {
            Server = server,
            RunId = runId,
            Scenario = scenario,
            Repetition = rep,
            Duration = TimeSpan.FromSeconds(options.DurationSeconds),
            Creates = options.Creates,
            Options = options,
            Paths = paths,
        };

        // A hard bound on the whole cell (setup, timed part and verification) so a hung server cannot stall the run;
        // the scale scenarios (18-24) do work of a given size instead of for a given time, and get --scale-timeout.
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bound.CancelAfter(ScaleScenarios.Handles(scenario)
            ? TimeSpan.FromMinutes(options.ScaleTimeoutMinutes)
            : TimeSpan.FromSeconds((options.DurationSeconds * 6) + 120));
        try
        {
            // Let the previous cell's garbage and connections settle.
            GC.Collect();
            await Task.Delay(200, cancellationToken);
            var result = await Scenarios.RunAsync(context, bound.Token);
            if (result.Failure is null && ProcessMemory.PeakResidentMiB(server.Pid) is { } peak)
            {
                result = result with { Metrics = new Dictionary<string, double>(result.Metrics) { ["peak RSS MiB"] = peak } };
            }

            return result;
        }
        catch (BenchFailureException ex)
        {
            return CellResult.Failed(ex.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return CellResult.Failed("timed out (the cell's hard time limit expired)");
        }
        catch (OperationCanceledException)
        {
            return CellResult.Failed("cancelled");
        }
        catch (HttpRequestException ex)
        {
            return CellResult.Failed($"HTTP error: {ex.Message}");
        }
        catch (IOException ex)
        {
            return CellResult.Failed($"I/O error: {ex.Message}");
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            // Scenario 16's raw socket readers see connection errors as they are, not wrapped as HttpClient does.
            return CellResult.Failed($"socket error: {ex.Message}");
        }
        catch (System.Text.Json.JsonException ex)
        {
            return CellResult.Failed($"invalid JSON read back: {ex.Message}");
        }
    }

    private static async Task PrepareOursAsync(BenchOptions options, BenchPaths paths, Dictionary<string, string> unavailable, CancellationToken cancellationToken)
    {
        if (File.Exists(paths.OursDll) && !options.Build)
        {
            return;
        }

        if (options.OursDll is not null)
        {
            MarkOurs(options, unavailable, $"{paths.OursDll} does not exist");
            return;
        }

        Log("building src/DurableStreams.Cli (Release) ...");
        var exit = await RunToolAsync("dotnet", ["build", Path.Combine(paths.Root, "src", "DurableStreams.Cli"), "-c", "Release", "-nologo", "-v", "quiet"], paths.Root, cancellationToken);
        if (exit != 0 || !File.Exists(paths.OursDll))
        {
            MarkOurs(options, unavailable, $"dotnet build src/DurableStreams.Cli -c Release failed (exit code {exit})");
        }
    }

    private static void CopyDirectory(string source, string destination)
    {
        foreach (var directory in Directory.EnumerateDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(destination, Path.GetRelativePath(source, directory)));
        }

        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(destination, Path.GetRelativePath(source, file)));
        }
    }

    private static void MarkOurs(BenchOptions options, Dictionary<string, string> unavailable, string reason)
    {
        foreach (var spec in options.Servers.Where(s => s.IsOurs))
        {
            unavailable[spec.Name] = reason;
        }

        Log(reason);
    }

    private static async Task PrepareReferenceAsync(
        BenchPaths paths, Dictionary<string, string> unavailable, List<string> versions, CancellationToken cancellationToken)
    {
        var reason = (string?)null;
        try
        {
            if (!Directory.Exists(Path.Combine(paths.NodeDir, "node_modules", "@durable-streams", "server")))
            {
                Log("npm ci in scripts/bench/node ...");
                var npm = OperatingSystem.IsWindows() ? "npm.cmd" : "npm";
                var exit = await RunToolAsync(npm, ["ci", "--no-audit", "--no-fund"], paths.NodeDir, cancellationToken);
                if (exit != 0)
                {
                    reason = $"npm ci in scripts/bench/node failed (exit code {exit})";
                }
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            reason = $"npm could not be started: {ex.Message}";
        }

        if (reason is not null)
        {
            foreach (var spec in ServerSpec.All.Where(s => !s.IsOurs))
            {
                unavailable[spec.Name] = reason;
            }

            Log(reason);
            return;
        }

        var packageJson = Path.Combine(paths.NodeDir, "node_modules", "@durable-streams", "server", "package.json");
        if (File.Exists(packageJson))
        {
            using var document = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(packageJson, cancellationToken));
            versions.Add("@durable-streams/server " + document.RootElement.GetProperty("version").GetString());
        }
    }

    private static async Task<int> RunToolAsync(string fileName, IEnumerable<string> arguments, string workingDirectory, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(fileName, arguments) { UseShellExecute = false, WorkingDirectory = workingDirectory };
        using var process = Process.Start(startInfo) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode;
    }

    private static string Describe(int scenario, CellResult result)
    {
        if (result.Failure is not null)
        {
            return "FAIL: " + result.Failure;
        }

        var info = ScenarioInfo.Find(scenario)!;
        var values = string.Join(", ", info.Metrics.Select(m => $"{Format(result.Metrics[m.Name])} {m.Name}"));
        return values + (result.Info is null ? string.Empty : $" ({result.Info})") + (result.Note is null ? string.Empty : $" [{result.Note}]");
    }

    private static string Report(
        BenchOptions options,
        Dictionary<(int Scenario, string Server), List<CellResult>> results,
        Dictionary<string, string> unavailable,
        List<string> versions,
        TimeSpan elapsed,
        bool cancelled)
    {
        var servers = options.Servers;
        var pairs = new[] { ServerSpec.OursMemory, ServerSpec.OursFile }
            .Where(o => servers.Contains(o) && servers.Contains(o.Counterpart))
            .ToList();

        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"## Durable Streams benchmark: medians of {options.Repeat} interleaved repetitions, {options.DurationSeconds:0.#} s per scenario, {(options.ReuseServers ? "one server per kind for the whole run" : "a fresh server (empty store) per cell")}, {(options.ServerWarmupSeconds > 0 ? $"{options.ServerWarmupSeconds:0.#} s of unmeasured mixed traffic on each server after it starts" : "no server warm-up")}");
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture,
            $"{Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, {string.Join(", ", versions.Prepend(NodeVersion()))}. Ratio = ours/ref: above 1 is better for rates, below 1 is better for ms.");
        text.AppendLine();

        text.Append("| # | Scenario | Metric |");
        foreach (var server in servers)
        {
            text.Append(CultureInfo.InvariantCulture, $" {server.Name} |");
        }

        foreach (var pair in pairs)
        {
            text.Append(CultureInfo.InvariantCulture, $" ours/ref {(pair.IsFile ? "file" : "memory")} |");
        }

        text.AppendLine();
        text.Append("|---|---|---|");
        text.Append(string.Concat(Enumerable.Repeat("---:|", servers.Count + pairs.Count)));
        text.AppendLine();

        var failures = new List<string>();
        foreach (var scenario in options.Scenarios)
        {
            var info = ScenarioInfo.Find(scenario)!;
            for (var m = 0; m < info.Metrics.Count; m++)
            {
                var metric = info.Metrics[m];
                text.Append(m == 0 ? $"| {scenario} | {info.Title} | {metric.Name} |" : $"| | | {metric.Name} |");
                var medians = new Dictionary<string, double>();
                foreach (var server in servers)
                {
                    text.Append(' ').Append(Cell(scenario, server, metric, results, unavailable, medians)).Append(" |");
                }

                foreach (var pair in pairs)
                {
                    var ratio = medians.TryGetValue(pair.Name, out var ours) && medians.TryGetValue(pair.Counterpart.Name, out var reference) && reference > 0
                        ? (ours / reference).ToString("0.00", CultureInfo.InvariantCulture) + "x"
                        : "-";
                    text.Append(CultureInfo.InvariantCulture, $" {ratio} |");
                }

                text.AppendLine();
            }

            foreach (var server in servers)
            {
                if (results.TryGetValue((scenario, server.Name), out var list))
                {
                    failures.AddRange(list.Select((r, i) => (r, i))
                        .Where(x => x.r.Failure is not null)
                        .Select(x => $"- scenario {scenario}, {server.Name}, repetition {x.i + 1}: FAIL: {FirstLine(x.r.Failure!)}"));
                    failures.AddRange(list.Select((r, i) => (r, i))
                        .Where(x => x.r.Note is not null)
                        .Select(x => $"- scenario {scenario}, {server.Name}, repetition {x.i + 1}: * {x.r.Note}"));
                }
            }
        }

        text.AppendLine();
        foreach (var (name, reason) in unavailable)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"- {name}: n/a: {FirstLine(reason)}");
        }

        foreach (var failure in failures)
        {
            text.AppendLine(failure);
        }

        if (cancelled)
        {
            text.AppendLine("- Cancelled: the table covers only the repetitions that ran.");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"Total time {elapsed.TotalMinutes:0.0} min.");
        return text.ToString();
    }

    private static string Cell(
        int scenario,
        ServerSpec server,
        MetricInfo metric,
        Dictionary<(int Scenario, string Server), List<CellResult>> results,
        Dictionary<string, string> unavailable,
        Dictionary<string, double> medians)
    {
        if (unavailable.ContainsKey(server.Name))
        {
            return "n/a";
        }

        if (!results.TryGetValue((scenario, server.Name), out var list) || list.Count == 0)
        {
            return "-";
        }

        if (list.Any(r => r.Failure is not null))
        {
            return "FAIL";
        }

        var median = Stats.Median([.. list.Select(r => r.Metrics[metric.Name])]);
        medians[server.Name] = median;
        return Format(median) + (list.Any(r => r.Note is not null) ? "*" : string.Empty);
    }

    private static string Format(double value) => value switch
    {
        double.NaN => "-",
        >= 1000 => value.ToString("#,0", CultureInfo.InvariantCulture),
        >= 100 => value.ToString("0", CultureInfo.InvariantCulture),
        >= 10 => value.ToString("0.0", CultureInfo.InvariantCulture),
        >= 1 => value.ToString("0.00", CultureInfo.InvariantCulture),
        _ => value.ToString("0.000", CultureInfo.InvariantCulture),
    };

    private static string FirstLine(string text)
    {
        var newline = text.IndexOfAny(['\r', '\n']);
        return newline < 0 ? text : text[..newline];
    }

    private static string NodeVersion()
    {
        try
        {
            var startInfo = new ProcessStartInfo("node", ["--version"]) { UseShellExecute = false, RedirectStandardOutput = true };
            using var process = Process.Start(startInfo);
            if (process is null)
            {
                return "node ?";
            }

            var version = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return "node " + version;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "node not found";
        }
    }

    private static void Log(string message) =>
        Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}
