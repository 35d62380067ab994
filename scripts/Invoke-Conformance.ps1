<#
.SYNOPSIS
    Runs the official Durable Streams server conformance suite against `durable-streams serve`.

.DESCRIPTION
    Installs the pinned suite (scripts/conformance, `npm ci`) when node_modules is missing or package-lock.json
    changed, starts the built CLI on a free loopback port with the chosen store (the file store in a fresh temp
    data directory, deleted afterwards), waits for its "listening on" line, runs the suite with
    vitest, stops the server with SIGTERM (Stop-Process on Windows) and returns the counts as an object with
    Passed, Failed, Skipped, Total, Store, BaseUrl, ServerExitCode, ServerStoppedCleanly, Duration and ResultsFile.

    The vitest JSON report is written to artifacts/conformance/<store>.json and the server's output to
    artifacts/conformance/<store>-server.out.log and .err.log. Failing tests are counted, not thrown; the script throws only when
    the run itself breaks (npm, the server or vitest crashing, or no results).

.PARAMETER Configuration
    Build configuration of the CLI to run (artifacts/bin/DurableStreams.Cli/<configuration>/durable-streams.dll).
    The CLI must already be built; build.ps1 does that first.

.PARAMETER Store
    The store the server uses: 'memory' (`serve --memory`), 'file' (`serve --data-dir <fresh temp directory>`,
    durability always; the directory is deleted after the run) or 'postgres' (`serve --postgres` against a throw-away
    PostgreSQL cluster started for the run, see PostgresTestCluster.ps1, stopped and deleted afterwards).

.PARAMETER Registry
    Also run the server with --registry (every create and delete appends to __registry__); results and logs are named
    <store>-registry.

.PARAMETER Retention
    Also give the server retention policies for stream names the suite does not use (a config file with a `retention`
    rule for `retained/**`, age and size, a State-Protocol compaction rule for `state/**`, and `--retention-interval 1s`,
    so the retention job runs during the suite):
    the suite must not notice them. Results and logs get a -retention suffix.

.PARAMETER Nodes
    With -Store postgres: start this many `serve --postgres` nodes on the one database (a cluster sharing streams and
    subscription state) and run the suite against each node in turn, while all of them run. Returns one result per
    node (with a Node property); files are named <store>-node<N>.json and <store>-node<N>-server.{out,err}.log.

.PARAMETER LongPollTimeoutMs
    Long-poll timeout given to both the server and the suite, in milliseconds.

.PARAMETER BaseUrl
    Run the suite against an already running server at this URL instead of starting one.

.EXAMPLE
    ./scripts/Invoke-Conformance.ps1 -Configuration Debug

.EXAMPLE
    ./scripts/Invoke-Conformance.ps1 -Store file

.EXAMPLE
    ./scripts/Invoke-Conformance.ps1 -Store postgres -Nodes 3

.EXAMPLE
    ./scripts/Invoke-Conformance.ps1 -BaseUrl http://127.0.0.1:4437
#>
[CmdletBinding()]
param(
    [ValidateSet('Debug', 'Release')]
    [string]$Configuration = 'Release',

    [ValidateSet('memory', 'file', 'postgres')]
    [string]$Store = 'memory',

    [switch]$Registry,

    [switch]$Retention,

    [ValidateRange(1, 9)]
    [int]$Nodes = 1,

    [ValidateRange(1, 600000)]
    [int]$LongPollTimeoutMs = 500,

    [uri]$BaseUrl
)

$ErrorActionPreference = 'Stop'
$PSNativeCommandUseErrorActionPreference = $false
Set-StrictMode -Version 3.0

$repoRoot = Split-Path -Parent $PSScriptRoot
. (Join-Path $PSScriptRoot 'PostgresTestCluster.ps1')
$suiteDir = Join-Path $PSScriptRoot 'conformance'
$outputDir = Join-Path $repoRoot 'artifacts' 'conformance'
$serverStartTimeout = [TimeSpan]::FromSeconds(60)
$serverStopTimeout = [TimeSpan]::FromSeconds(20)

function Install-ConformanceSuite {
    # `npm ci` only when node_modules is missing or the lock file changed since the last install.
    $lockFile = Join-Path $suiteDir 'package-lock.json'
    $stampFile = Join-Path $suiteDir 'node_modules' '.package-lock.sha256'
    $lockHash = (Get-FileHash -Algorithm SHA256 -LiteralPath $lockFile).Hash
    $vitestEntry = Join-Path $suiteDir 'node_modules' 'vitest' 'vitest.mjs'
    if ((Test-Path -LiteralPath $vitestEntry) -and (Test-Path -LiteralPath $stampFile) -and
        (Get-Content -Raw -LiteralPath $stampFile).Trim() -eq $lockHash) {
        return
    }

    if (-not (Get-Command npm -CommandType Application -ErrorAction SilentlyContinue)) {
        throw 'npm was not found on PATH; the conformance suite needs Node.js 20.19 or later with npm.'
    }
    Write-Host "Installing the conformance suite (npm ci in $suiteDir)"
    Push-Location $suiteDir
    try {
        & npm ci --no-audit --no-fund | Out-Host
        if ($LASTEXITCODE -ne 0) { throw "npm ci failed with exit code $LASTEXITCODE." }
    }
    finally {
        Pop-Location
    }
    Set-Content -LiteralPath $stampFile -Value $lockHash -NoNewline
}

function Get-FreeTcpPort {
    # Bind port 0 on loopback and let the OS choose; the port is released again before the server binds it.
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    try {
        $listener.Start()
        return ([System.Net.IPEndPoint]$listener.LocalEndpoint).Port
    }
    finally {
        $listener.Stop()
    }
}

function Get-StoreArgument {
    param([string]$StoreName)
    # Returns the serve arguments for a store, plus a directory to delete afterwards.
    switch ($StoreName) {
        'memory' { return [pscustomobject]@{ Arguments = @('--memory'); CleanupDirectory = $null } }
        'file' {
            # A fresh directory per run: no streams left over from an earlier run, and no clash with a running server.
            $directory = [System.IO.Directory]::CreateTempSubdirectory('durable-streams-conformance-').FullName
            return [pscustomobject]@{ Arguments = @('--data-dir', $directory); CleanupDirectory = $directory }
        }
        'postgres' {
            $cluster = Start-PostgresTestCluster
            return [pscustomobject]@{ Arguments = @('--postgres', $cluster.ConnectionString); CleanupDirectory = $null; Postgres = $cluster }
        }
        default { throw "Unknown store '$StoreName'." }
    }
}

function Open-LogFile {
    param([string]$Path)
    [System.IO.FileStream]::new($Path, [System.IO.FileMode]::Create, [System.IO.FileAccess]::Write,
        [System.IO.FileShare]::ReadWrite, 1)
}

function Read-LogFile {
    param([string]$Path)
    # Opened with FileShare.ReadWrite because the copy task still has the file open for writing.
    $stream = [System.IO.FileStream]::new($Path, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read,
        [System.IO.FileShare]::ReadWrite)
    try {
        return [System.IO.StreamReader]::new($stream).ReadToEnd()
    }
    finally {
        $stream.Dispose()
    }
}

function Start-ConformanceServer {
    param([string]$ServerDll, [string[]]$StoreArguments, [string]$LogPrefix)

    $port = Get-FreeTcpPort
    $startInfo = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($argument in @($ServerDll, 'serve') + $StoreArguments + @(
            '--host', '127.0.0.1', '--port', "$port", '--long-poll-timeout', "${LongPollTimeoutMs}ms",
            # The suite's webhook receivers listen on http://localhost: the development exception is opt-in.
            '--allow-local-webhooks')) {
        $startInfo.ArgumentList.Add($argument)
    }
    $startInfo.UseShellExecute = $false
    $startInfo.RedirectStandardOutput = $true
    $startInfo.RedirectStandardError = $true
    $startInfo.WorkingDirectory = $repoRoot

    Write-Host "Starting: dotnet $($startInfo.ArgumentList -join ' ')"
    $process = [System.Diagnostics.Process]::Start($startInfo)

    # Each pipe is copied to its own log file by a .NET task (no PowerShell event handlers), so the server can
    # never block on a full pipe; buffer size 1 makes every write reach the file at once.
    $logs = @(
        (Open-LogFile "$LogPrefix.out.log"),
        (Open-LogFile "$LogPrefix.err.log")
    )
    $copies = @(
        $process.StandardOutput.BaseStream.CopyToAsync($logs[0]),
        $process.StandardError.BaseStream.CopyToAsync($logs[1])
    )
    $server = [pscustomobject]@{ Process = $process; Logs = $logs; Copies = $copies; BaseUrl = $null; LogFiles = "$LogPrefix.{out,err}.log" }

    $deadline = [DateTime]::UtcNow + $serverStartTimeout
    while ($true) {
        $match = [regex]::Match((Read-LogFile "$LogPrefix.out.log"), 'listening on (?<url>http://\S+)\r?\n')
        if ($match.Success) {
            $server.BaseUrl = $match.Groups['url'].Value.TrimEnd('/')
            if (([uri]$server.BaseUrl).Port -eq $port) {
                return $server
            }
            $problem = "reported $($server.BaseUrl), but was asked to listen on port $port"
        }
        elseif ($process.HasExited) {
            $problem = "exited with code $($process.ExitCode) before listening"
        }
        elseif ([DateTime]::UtcNow -gt $deadline) {
            $problem = "did not print its URL within $($serverStartTimeout.TotalSeconds) s"
        }
        else {
            Start-Sleep -Milliseconds 100
            continue
        }

        Stop-ConformanceServer $server | Out-Null
        $output = (Read-LogFile "$LogPrefix.out.log") + (Read-LogFile "$LogPrefix.err.log")
        throw "The server $problem. Its output:`n$($output.Trim())"
    }
}

function Stop-ConformanceServer {
    param($Server)
    # Returns the server's exit code; a graceful stop after SIGTERM exits 0.
    $process = $Server.Process
    try {
        if (-not $process.HasExited) {
            $kill = Get-Command kill -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
            if ($IsWindows -or -not $kill) {
                Stop-Process -Id $process.Id -Force
            }
            else {
                & $kill.Source -TERM $process.Id
            }
            if (-not $process.WaitForExit([int]$serverStopTimeout.TotalMilliseconds)) {
                Write-Warning "The server (PID $($process.Id)) did not stop within $($serverStopTimeout.TotalSeconds) s of SIGTERM; killing it."
                $process.Kill($true)
                $process.WaitForExit()
            }
        }
        $process.WaitForExit()
        [System.Threading.Tasks.Task]::WaitAll($Server.Copies, [int]$serverStopTimeout.TotalMilliseconds) | Out-Null
        return $process.ExitCode
    }
    finally {
        foreach ($log in $Server.Logs) { $log.Dispose() }
        $process.Dispose()
    }
}

function Invoke-Vitest {
    param([string]$Url, [string]$ResultsFile)

    if (Test-Path -LiteralPath $ResultsFile) { Remove-Item -LiteralPath $ResultsFile }
    $saved = @{}
    $variables = @{
        CONFORMANCE_TEST_URL             = $Url
        CONFORMANCE_LONG_POLL_TIMEOUT_MS = "$LongPollTimeoutMs"
        CONFORMANCE_RESULTS_FILE         = $ResultsFile
        NO_COLOR                         = '1'
    }
    foreach ($name in $variables.Keys) {
        $saved[$name] = [Environment]::GetEnvironmentVariable($name)
        [Environment]::SetEnvironmentVariable($name, $variables[$name])
    }
    Push-Location $suiteDir
    try {
        # vitest exits 1 when tests fail; that is a result, not a crash, so the exit code is only reported.
        & node (Join-Path 'node_modules' 'vitest' 'vitest.mjs') run | Out-Host
        $exitCode = $LASTEXITCODE
    }
    finally {
        Pop-Location
        foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) }
    }

    if (-not (Test-Path -LiteralPath $ResultsFile)) {
        throw "vitest exited with code $exitCode and wrote no results ($ResultsFile)."
    }
    $report = Get-Content -Raw -LiteralPath $ResultsFile | ConvertFrom-Json
    if ($report.numTotalTests -eq 0) {
        throw "vitest exited with code $exitCode and ran no tests; see the output above."
    }
    if ($exitCode -ne 0 -and $report.numFailedTests -eq 0) {
        throw "vitest exited with code $exitCode but reported no failed test (an unhandled error or a suite that failed to load); see the output above."
    }
    return $report
}

if (-not (Get-Command node -CommandType Application -ErrorAction SilentlyContinue)) {
    throw 'node was not found on PATH; the conformance suite needs Node.js 20.19 or later.'
}
if ($Nodes -gt 1 -and ($Store -ne 'postgres' -or $BaseUrl)) {
    throw '-Nodes greater than 1 needs -Store postgres (nodes share one database) and no -BaseUrl.'
}
Install-ConformanceSuite
New-Item -ItemType Directory -Force -Path $outputDir | Out-Null
$runName = if ($Registry) { "$Store-registry" } else { $Store }
if ($Retention) { $runName += '-retention' }

$servers = [System.Collections.Generic.List[object]]::new()
$runs = [System.Collections.Generic.List[object]]::new()
$storeSetup = $null
$started = [System.Diagnostics.Stopwatch]::StartNew()
try {
    if ($BaseUrl) {
        $urls = @($BaseUrl.AbsoluteUri.TrimEnd('/'))
    }
    else {
        $serverDll = Join-Path $repoRoot 'artifacts' 'bin' 'DurableStreams.Cli' $Configuration.ToLowerInvariant() 'durable-streams.dll'
        if (-not (Test-Path -LiteralPath $serverDll)) {
            throw "The CLI is not built: $serverDll is missing. Run ./build.ps1 build -Configuration $Configuration first."
        }
        $storeSetup = Get-StoreArgument $Store
        $serverArguments = @($storeSetup.Arguments) + $(if ($Registry) { @('--registry') } else { @() })
        if ($Retention) {
            $retentionConfig = Join-Path $outputDir "$runName-config.json"
            Set-Content -LiteralPath $retentionConfig -Value '{ "retention": [ { "streams": "retained/**", "maxAge": "1h", "maxBytes": "1MiB" }, { "streams": "state/**", "compaction": "state", "compactionMinBytes": 1024 } ] }'
            $serverArguments += @('--config', $retentionConfig, '--retention-interval', '1s')
        }
        # Every node is up before the first suite starts, so each suite runs inside a live cluster.
        for ($node = 1; $node -le $Nodes; $node++) {
            $prefix = if ($Nodes -gt 1) { "$runName-node$node-server" } else { "$runName-server" }
            $server = Start-ConformanceServer -ServerDll $serverDll -StoreArguments $serverArguments -LogPrefix (Join-Path $outputDir $prefix)
            $servers.Add($server)
            Write-Host "Server PID $($server.Process.Id) listening on $($server.BaseUrl)"
        }
        $urls = @($servers | ForEach-Object BaseUrl)
    }

    for ($node = 1; $node -le $urls.Count; $node++) {
        $resultsFile = Join-Path $outputDir $(if ($Nodes -gt 1) { "$runName-node$node.json" } else { "$runName.json" })
        $nodeStarted = [System.Diagnostics.Stopwatch]::StartNew()
        if ($Nodes -gt 1) { Write-Host "Suite against node $node of ${Nodes}: $($urls[$node - 1])" }
        $report = Invoke-Vitest -Url $urls[$node - 1] -ResultsFile $resultsFile
        $runs.Add([pscustomobject]@{ Url = $urls[$node - 1]; Report = $report; ResultsFile = $resultsFile; Duration = $nodeStarted.Elapsed })
    }
}
finally {
    $exitCodes = @{}
    for ($node = 1; $node -le $servers.Count; $node++) {
        $exitCodes[$node] = Stop-ConformanceServer $servers[$node - 1]
        Write-Host "Server $node stopped with exit code $($exitCodes[$node]) (logs: $($servers[$node - 1].LogFiles))"
    }
    if ($storeSetup -and $storeSetup.PSObject.Properties['Postgres']) {
        Stop-PostgresTestCluster $storeSetup.Postgres
    }
    if ($storeSetup -and $storeSetup.CleanupDirectory) {
        # After the server has stopped and released the directory.
        try {
            Remove-Item -LiteralPath $storeSetup.CleanupDirectory -Recurse -Force
        }
        catch {
            Write-Warning "Could not delete the data directory $($storeSetup.CleanupDirectory): $($_.Exception.Message)"
        }
    }
}

for ($node = 1; $node -le $runs.Count; $node++) {
    $run = $runs[$node - 1]
    $serverExitCode = if ($exitCodes.ContainsKey($node)) { $exitCodes[$node] } else { $null }
    # SIGTERM must give a graceful stop and exit 0; Stop-Process on Windows cannot ask for one.
    $stoppedCleanly = if ($null -eq $serverExitCode) { $null } else { $serverExitCode -eq 0 -or $IsWindows }
    [pscustomobject]@{
        Store                = $Store
        Node                 = if ($Nodes -gt 1) { $node } else { $null }
        Passed               = [int]$run.Report.numPassedTests
        Failed               = [int]$run.Report.numFailedTests
        Skipped              = [int]($run.Report.numPendingTests + $run.Report.numTodoTests)
        Total                = [int]$run.Report.numTotalTests
        BaseUrl              = $run.Url
        ServerExitCode       = $serverExitCode
        ServerStoppedCleanly = $stoppedCleanly
        Duration             = if ($Nodes -gt 1) { $run.Duration } else { $started.Elapsed }
        ResultsFile          = $run.ResultsFile
    }
}
