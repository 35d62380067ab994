<#
.SYNOPSIS
    Builds, tests and packs DurableStreams for .NET.

.DESCRIPTION
    The one front door for developers and CI. Run it with the repository's local PowerShell tool:

        dotnet tool restore
        dotnet pwsh ./build.ps1 test

    Tasks:
      build        dotnet build DurableStreams.sln.
      test         build, lay out the PowerShell module (as the module task), then xUnit (dotnet test; TRX files in
                   artifacts/test-results; the browser tests of the inspector page run after the rest as their own
                   suite, "Browser (Chromium)", TRX files in artifacts/test-results/browser), the official conformance suite against `durable-streams serve` once per
                   store (--memory, then the file store in a fresh temp data directory, then the file store with
                   --registry and retention and compaction policies for names the suite does not use, then three `serve --postgres` nodes on one throw-away PostgreSQL cluster, the suite
                   against each node in turn, when PostgreSQL binaries are installed), Pester
                   (tests/PowerShell/*.Tests.ps1, run in a child pwsh against the built module folder), and the
                   cross-implementation tier: tests/DurableStreams.Interop.Tests and the Pester tests tagged Interop
                   run the client, the tool's read/follow/append and Read-/Write-DurableStream against the Node
                   reference server (@durable-streams/server, pinned in tests/DurableStreams.Interop.Tests/reference,
                   installed by npm ci into artifacts/interop/reference) and against ours. Without node/npm the tier
                   skips with a message; under CI=true it fails. Then the official client conformance suite
                   (../shared/vendor/client-conformance-tests, or $env:DS_CLIENT_CONFORMANCE_SUITE; copied to
                   artifacts/client-conformance/suite and installed there by npm ci from the lock file in
                   tests/DurableStreams.ClientConformance.Adapter/suite) drives our client through
                   tests/DurableStreams.ClientConformance.Adapter against the Node reference server: its own summary
                   line. Without the suite or node/npm it skips with a note; under CI=true it fails.
                   "Packages and sample": pack (as the pack task, from the build), check that each library package holds
                   its .dll, .xml docs and README.md and has a .snupkg, then restore samples/EmbeddedServer against the
                   packed packages (artifacts/nupkg; its own packages folder artifacts/sample-packages, from which our
                   packages are deleted first so a re-pack of the same version is used), build and run it, and check
                   what it prints.
      conformance  build, then the conformance suite only, against both stores (and the file store with --registry).
      module       build, then lay out the importable DurableStreams module in artifacts/module/DurableStreams:
                   dotnet publish of src/DurableStreams.PowerShell (with liblmdb.so next to LightningDB.dll), the
                   manifest with ModuleVersion stamped from Directory.Build.props, the format file,
                   THIRD-PARTY-NOTICES.txt and en-US/DurableStreams.PowerShell.dll-Help.xml generated from
                   module/help/*.md by scripts/New-ModuleHelp.ps1 (which also copies module/help/about_*.md to
                   en-US/about_*.help.txt).
      pack         dotnet pack every packable project into artifacts/nupkg (old packages there are deleted first): the
                   libraries DurableStreams.Protocol, .Core, .Client, .Server, .Storage.Files, .Storage.Postgres and
                   .Subscriptions (each with XML docs, README and a .snupkg of symbols) and the tool DurableStreams.Tool,
                   all at the version in Directory.Build.props.
      install      module and pack, then copy the module folder into the user's module path
                   (<first $env:PSModulePath entry under the home folder>/DurableStreams/<version>, for example
                   ~/.local/share/powershell/Modules/DurableStreams/0.1.0; an older copy of the same version is
                   replaced) and install or update the tool globally:
                   dotnet tool update -g --add-source artifacts/nupkg DurableStreams.Tool.
      clean        delete artifacts/.

    test and conformance keep going after a failing suite, print one line per suite and end with exactly one
    plain line "Total: N passed, N failed, N skipped", where failed also counts each broken step (a build error, a
    crashed runner, a suite that ran fewer tests than its minimum in $MinimumTests). The exit code is 1 when a test
    failed or a step broke, else 0. Under CI=true nothing that needs the machine may skip silently: missing
    PostgreSQL binaries fail the PostgreSQL tests and the 3-node conformance run, a missing Chromium the browser
    tests, missing node/npm the cross-implementation tier and the client conformance suite.

.PARAMETER Task
    build (default), test, conformance, module, pack, install, clean or bench.

.PARAMETER Configuration
    Release (default) or Debug.

.EXAMPLE
    dotnet pwsh ./build.ps1 test

.EXAMPLE
    dotnet pwsh ./build.ps1 conformance -Configuration Debug

.EXAMPLE
    dotnet pwsh ./build.ps1 module
    Import-Module ./artifacts/module/DurableStreams

.EXAMPLE
    dotnet pwsh ./build.ps1 install
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'conformance', 'module', 'clean', 'pack', 'install', 'bench')]
    [string]$Task = 'build',

    [ValidateSet('Debug', 'Release')]
    [string]$Configuration = 'Release',

    # bench only: arguments for scripts/bench, e.g. build.ps1 bench --duration 2 --scenarios 1,2 (see scripts/bench/README.md).
    [Parameter(ValueFromRemainingArguments)]
    [string[]]$BenchArgs = @()
)

$ErrorActionPreference = 'Stop'
if ($Task -ne 'bench' -and $BenchArgs.Count -gt 0) {
    Write-Error "Unexpected arguments for task '$Task': $($BenchArgs -join ' ')"
    exit 2
}
$PSNativeCommandUseErrorActionPreference = $false
Set-StrictMode -Version 3.0

# Plain logs: no ANSI colours from this script or from the tools it starts.
$PSStyle.OutputRendering = 'PlainText'
$env:NO_COLOR = '1'
$env:DOTNET_NOLOGO = '1'

$root = $PSScriptRoot
. (Join-Path $root 'scripts' 'PostgresTestCluster.ps1')
$artifacts = Join-Path $root 'artifacts'
$solution = Join-Path $root 'DurableStreams.sln'
$testResults = Join-Path $artifacts 'test-results'
$moduleDir = Join-Path $artifacts 'module' 'DurableStreams'

function Exec {
    param(
        [Parameter(Mandatory)][scriptblock]$Command,
        [string]$What = $Command.ToString().Trim()
    )
    $global:LASTEXITCODE = 0
    & $Command | Out-Host
    if ($LASTEXITCODE -ne 0) {
        throw "'$What' failed with exit code $LASTEXITCODE."
    }
}

function Assert-Dotnet {
    if (-not (Get-Command dotnet -CommandType Application -ErrorAction SilentlyContinue)) {
        throw 'dotnet was not found on PATH; install the .NET 10 SDK.'
    }
}

function Invoke-Build {
    Exec { dotnet build $solution -c $Configuration } "dotnet build -c $Configuration"
}

function Get-RepoVersion {
    $version = @(([xml](Get-Content -Raw -LiteralPath (Join-Path $root 'Directory.Build.props'))).Project.PropertyGroup |
            Where-Object { $_['Version'] } | ForEach-Object { $_['Version'].InnerText })[0]
    if (-not $version) { throw 'Directory.Build.props has no <Version>.' }
    $version
}

function Invoke-ModuleLayout {
    # Lays out the importable module folder from an existing build (run Invoke-Build first).
    if (Test-Path -LiteralPath $moduleDir) {
        Remove-Item -LiteralPath $moduleDir -Recurse -Force
    }
    $project = Join-Path $root 'src' 'DurableStreams.PowerShell'
    Exec { dotnet publish $project -c $Configuration --no-build -o $moduleDir } "dotnet publish src/DurableStreams.PowerShell -c $Configuration"
    foreach ($required in 'DurableStreams.PowerShell.dll', 'LightningDB.dll') {
        if (-not (Test-Path -LiteralPath (Join-Path $moduleDir $required))) { throw "the module folder lacks $required." }
    }
    if ($IsLinux -and -not (Test-Path -LiteralPath (Join-Path $moduleDir 'liblmdb.so'))) {
        throw 'the module folder lacks liblmdb.so next to LightningDB.dll (pwsh does not probe runtimes/<rid>/native).'
    }

    $version = Get-RepoVersion
    $manifest = Get-Content -Raw -LiteralPath (Join-Path $root 'module' 'DurableStreams.psd1')
    $manifest = $manifest -replace "(?m)^(\s*ModuleVersion\s*=\s*)'[^']*'", "`${1}'$version'"
    Set-Content -LiteralPath (Join-Path $moduleDir 'DurableStreams.psd1') -Value $manifest -NoNewline
    Copy-Item -LiteralPath (Join-Path $root 'module' 'DurableStreams.Format.ps1xml') -Destination $moduleDir
    Copy-Item -LiteralPath (Join-Path $root 'THIRD-PARTY-NOTICES.txt') -Destination $moduleDir

    # The help generator imports the built module, so it runs in a child pwsh (a binary module cannot be unloaded).
    $helpFile = Join-Path $moduleDir 'en-US' 'DurableStreams.PowerShell.dll-Help.xml'
    Exec {
        dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $root 'scripts' 'New-ModuleHelp.ps1') `
            -ModulePath $moduleDir -SourcePath (Join-Path $root 'module' 'help') -OutputPath $helpFile
    } 'scripts/New-ModuleHelp.ps1'
    Write-Host "Module: $moduleDir (version $version)"
}

function Get-UserModuleRoot {
    $userHome = [Environment]::GetFolderPath('UserProfile')
    $entry = @($env:PSModulePath -split [IO.Path]::PathSeparator | Where-Object {
            $_ -and $userHome -and [IO.Path]::GetFullPath($_).StartsWith($userHome.TrimEnd([IO.Path]::DirectorySeparatorChar) + [IO.Path]::DirectorySeparatorChar, [StringComparison]::Ordinal)
        })[0]
    if (-not $entry) { throw "No `$env:PSModulePath entry lies under the home folder '$userHome'." }
    $entry
}

function Invoke-Install {
    $version = Get-RepoVersion
    $target = Join-Path (Get-UserModuleRoot) 'DurableStreams' $version
    if (Test-Path -LiteralPath $target) {
        Remove-Item -LiteralPath $target -Recurse -Force
    }
    New-Item -ItemType Directory -Force -Path $target | Out-Null
    Copy-Item -Path (Join-Path $moduleDir '*') -Destination $target -Recurse
    Write-Host "Installed the DurableStreams module $version to $target"
    Exec { dotnet tool update -g --add-source (Join-Path $artifacts 'nupkg') DurableStreams.Tool } 'dotnet tool update -g DurableStreams.Tool'
}

function Invoke-Pack {
    param([switch]$NoBuild)
    $nupkg = Join-Path $artifacts 'nupkg'
    if (Test-Path -LiteralPath $nupkg) {
        Get-ChildItem -LiteralPath $nupkg -Include '*.nupkg', '*.snupkg' -File -Recurse | Remove-Item
    }
    [string[]]$buildArgument = if ($NoBuild) { @('--no-build') } else { @() }
    Exec { dotnet pack $solution -c $Configuration -o $nupkg @buildArgument } "dotnet pack DurableStreams.sln -c $Configuration"
}

function Get-LibraryPackageIds {
    # The library packages: src projects that set IsPackable, less the tool (PackAsTool). Package id = project name.
    foreach ($project in Get-ChildItem -Path (Join-Path $root 'src' '*' '*.csproj')) {
        $text = Get-Content -Raw -LiteralPath $project.FullName
        if ($text -match '<IsPackable>true</IsPackable>' -and $text -notmatch '<PackAsTool>true</PackAsTool>') {
            $project.BaseName
        }
    }
}

function Invoke-PackageTests {
    # Packs from the existing build, checks every package, then builds and runs samples/EmbeddedServer against the
    # packed packages (not the projects). One result per package and one for the sample.
    Invoke-Pack -NoBuild
    $nupkg = Join-Path $artifacts 'nupkg'
    $version = Get-RepoVersion
    $passed = 0; $failed = 0
    Add-Type -AssemblyName System.IO.Compression.FileSystem
    $ids = @(Get-LibraryPackageIds)
    if ($ids.Count -eq 0) { throw 'no src project sets IsPackable.' }
    foreach ($id in @($ids) + 'DurableStreams.Tool') {
        $problems = [System.Collections.Generic.List[string]]::new()
        $package = Join-Path $nupkg "$id.$version.nupkg"
        $symbols = Join-Path $nupkg "$id.$version.snupkg"
        if (-not (Test-Path -LiteralPath $package)) { $problems.Add("$id.$version.nupkg is missing") }
        else {
            $zip = [IO.Compression.ZipFile]::OpenRead($package)
            try {
                $entries = @($zip.Entries | ForEach-Object FullName)
                $required = if ($id -eq 'DurableStreams.Tool') { @('tools/net10.0/any/durable-streams.dll', 'THIRD-PARTY-NOTICES.txt') }
                else { @("lib/net10.0/$id.dll", "lib/net10.0/$id.xml", 'README.md') }
                foreach ($entry in $required) {
                    if ($entries -notcontains $entry) { $problems.Add("$id.$version.nupkg lacks $entry") }
                }
                $nuspec = [xml](New-Object IO.StreamReader(($zip.Entries | Where-Object FullName -EQ "$id.nuspec").Open())).ReadToEnd()
                $metadata = $nuspec.package.metadata
                if ($id -ne 'DurableStreams.Tool' -and $metadata['readme']?.InnerText -ne 'README.md') { $problems.Add("$id.nuspec names no README") }
                if (-not $metadata['repository']?.GetAttribute('commit')) { $problems.Add("$id.nuspec records no commit (source link)") }
            }
            finally { $zip.Dispose() }
        }
        if (-not (Test-Path -LiteralPath $symbols)) { $problems.Add("$id.$version.snupkg is missing") }
        if ($problems.Count -eq 0) { $passed++ }
        else { $failed++; foreach ($problem in $problems) { Write-Host "FAIL: package $id`: $problem" } }
    }

    # The sample restores into a packages folder of its own; our packages are deleted from it first, so a re-pack of
    # the same version is what it gets.
    $sample = Join-Path $root 'samples' 'EmbeddedServer'
    $samplePackages = Join-Path $artifacts 'sample-packages'
    if (Test-Path -LiteralPath $samplePackages) {
        Get-ChildItem -LiteralPath $samplePackages -Directory -Filter 'durablestreams.*' | Remove-Item -Recurse -Force
    }
    Exec { dotnet restore $sample --packages $samplePackages --force } 'dotnet restore samples/EmbeddedServer'
    Exec { dotnet build $sample -c $Configuration --no-restore } "dotnet build samples/EmbeddedServer -c $Configuration"
    $dll = Join-Path $artifacts 'bin' 'EmbeddedServer' $Configuration.ToLowerInvariant() 'EmbeddedServer.dll'
    $start = [Diagnostics.ProcessStartInfo]::new('dotnet')
    $start.ArgumentList.Add($dll)
    $start.RedirectStandardOutput = $true
    $start.RedirectStandardError = $true
    $process = [Diagnostics.Process]::Start($start)
    $errorText = $process.StandardError.ReadToEndAsync()
    $output = $process.StandardOutput.ReadToEndAsync()
    if (-not $process.WaitForExit(120000)) {
        $process.Kill($true)
        throw "samples/EmbeddedServer (PID $($process.Id)) did not exit within 120 s."
    }
    $process.WaitForExit()
    Write-Host $output.Result
    $sampleProblems = [System.Collections.Generic.List[string]]::new()
    if ($process.ExitCode -ne 0 -or $output.Result -notmatch '(?m)^read: hello, world\r?$') {
        $sampleProblems.Add("it exited with code $($process.ExitCode) without printing 'read: hello, world'. stderr: $($errorText.Result)")
    }
    # It ran on the assemblies just packed, not on a stale copy of the same version.
    foreach ($id in 'DurableStreams.Server', 'DurableStreams.Client') {
        $zip = [IO.Compression.ZipFile]::OpenRead((Join-Path $nupkg "$id.$version.nupkg"))
        try {
            $stream = ($zip.Entries | Where-Object FullName -EQ "lib/net10.0/$id.dll").Open()
            try { $packed = [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData($stream)) } finally { $stream.Dispose() }
        }
        finally { $zip.Dispose() }
        $used = (Get-FileHash -Algorithm SHA256 -LiteralPath (Join-Path (Split-Path $dll) "$id.dll")).Hash
        if ($used -ne $packed) { $sampleProblems.Add("its $id.dll is not the one in artifacts/nupkg/$id.$version.nupkg") }
    }
    if ($sampleProblems.Count -eq 0) { $passed++ }
    else { $failed++; foreach ($problem in $sampleProblems) { Write-Host "FAIL: samples/EmbeddedServer: $problem" } }
    Add-SuiteResult 'Packages and sample' ([pscustomobject]@{ Passed = $passed; Failed = $failed; Skipped = 0 })
}

function Add-FailedTrxTest {
    # The names of a TRX file's failed tests and the first line of each message, for the end of the run: CI shows only
    # the tail of the output, and a count alone does not say which test to look at.
    param([string]$File)
    if ($null -eq $script:failedTests) { return }
    # XPath by local name: a TRX without results has no Results element, which strict mode refuses as a property.
    $document = [xml](Get-Content -Raw -LiteralPath $File)
    foreach ($result in @($document.SelectNodes("//*[local-name()='UnitTestResult']"))) {
        if ($result.GetAttribute('outcome') -notin 'Failed', 'Error', 'Timeout', 'Aborted') { continue }
        $node = $result.SelectSingleNode("*[local-name()='Output']/*[local-name()='ErrorInfo']/*[local-name()='Message']")
        $message = if ($null -ne $node) { $node.InnerText } else { '' }
        $firstLine = @($message -split "`r?`n" | Where-Object { $_.Trim() } | Select-Object -First 1) -join ''  # '' when there is no message
        if ($firstLine.Length -gt 300) { $firstLine = $firstLine.Substring(0, 300) + '…' }
        $script:failedTests.Add("$($result.GetAttribute('testName')): $firstLine")
    }
}

function Get-TrxCount {
    param([string[]]$TrxFiles)
    $passed = 0; $failed = 0; $skipped = 0
    foreach ($file in $TrxFiles) {
        $counters = ([xml](Get-Content -Raw -LiteralPath $file)).TestRun.ResultSummary.Counters
        $passed += [int]$counters.passed
        $failed += [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        # The VSTest TRX logger leaves xUnit v3 skips out of every counter except total, so count them as total - executed.
        $skipped += [Math]::Max([int]$counters.notExecuted, [int]$counters.total - [int]$counters.executed)
        Add-FailedTrxTest $file
    }
    [pscustomobject]@{ Passed = $passed; Failed = $failed; Skipped = $skipped }
}

function Invoke-DotnetTest {
    # One dotnet test run into its own results folder; returns the TRX counts. Fails when no TRX was written, or when
    # dotnet test failed although its TRX files report no failed test (a crashed host, a broken build step).
    param([string]$Target, [string]$Results, [string]$What, [string[]]$Arguments = @())
    if (Test-Path -LiteralPath $Results) {
        Get-ChildItem -LiteralPath $Results -Filter *.trx | Remove-Item
    }
    # One TRX per test project. The logger's default names are made unique ("…[1].trx") when two projects finish
    # in the same second; a fixed LogFileName would be overwritten by each project in turn.
    $global:LASTEXITCODE = 0
    dotnet test $Target -c $Configuration --no-build --logger trx --results-directory $Results @Arguments | Out-Host
    $exitCode = $LASTEXITCODE
    $trx = @(Get-ChildItem -LiteralPath $Results -Filter *.trx -ErrorAction SilentlyContinue | ForEach-Object FullName)
    if ($trx.Count -eq 0) {
        throw "dotnet test of $What exited with code $exitCode and wrote no TRX file to $Results."
    }
    $counts = Get-TrxCount $trx
    if ($exitCode -ne 0 -and $counts.Failed -eq 0) {
        throw "dotnet test of $What exited with code $exitCode although its TRX files report no failed test."
    }
    $counts
}

function Invoke-XUnit {
    # The cross-implementation tests (Invoke-Interop) and the browser tests (Invoke-BrowserTests) have their own summary
    # lines; Chromium beside the other suites would also compete for the same cores.
    $counts = Invoke-DotnetTest -Target $solution -Results $testResults -What 'the solution' `
        -Arguments @('-p:RunBrowserTests=false', '--filter', 'FullyQualifiedName!~DurableStreams.Interop.Tests')
    Add-SuiteResult 'xUnit' $counts
}

function Invoke-BrowserTests {
    # tests/DurableStreams.Browser.Tests drives Debian's Chromium (/usr/lib/chromium/chromium; .ci/run installs it).
    # Without it the tests report themselves skipped, except under CI=true, where they fail.
    $counts = Invoke-DotnetTest -Target (Join-Path $root 'tests' 'DurableStreams.Browser.Tests') `
        -Results (Join-Path $testResults 'browser') -What 'the browser tests'
    Add-SuiteResult 'Browser (Chromium)' $counts
}

function Invoke-Conformance {
    param([string]$Store, [switch]$Registry, [switch]$Retention, [int]$Nodes = 1)
    $results = @(& (Join-Path $root 'scripts' 'Invoke-Conformance.ps1') -Configuration $Configuration -Store $Store -Registry:$Registry -Retention:$Retention -Nodes $Nodes)
    foreach ($result in $results) {
        $name = if ($Registry -and $Retention) { "Conformance ($Store, --registry, retention)" }
        elseif ($Registry) { "Conformance ($Store, --registry)" }
        elseif ($Nodes -gt 1) { "Conformance ($Store, node $($result.Node) of $Nodes)" }
        else { "Conformance ($Store)" }
        Add-SuiteResult $name $result
        Write-Host ("$name took {0:N1} s" -f $result.Duration.TotalSeconds)
    }
    foreach ($result in $results) {
        if ($result.ServerStoppedCleanly -eq $false) {
            throw "the server at $($result.BaseUrl) exited with code $($result.ServerExitCode) after SIGTERM instead of 0."
        }
    }
}

function Invoke-Interop {
    # xUnit (tests/DurableStreams.Interop.Tests) and, when the module is laid out, the Pester tests tagged Interop:
    # one summary line for the tier. Both install the pinned reference server themselves (npm ci, artifacts/interop).
    param([switch]$WithPester)
    $counts = Invoke-DotnetTest -Target (Join-Path $root 'tests' 'DurableStreams.Interop.Tests') `
        -Results (Join-Path $testResults 'interop') -What 'DurableStreams.Interop.Tests'
    if ($WithPester) {
        $pester = Invoke-PesterRun -Name 'pester-interop' -Tag 'Interop'
        $counts = [pscustomobject]@{
            Passed = $counts.Passed + $pester.Passed; Failed = $counts.Failed + $pester.Failed; Skipped = $counts.Skipped + $pester.Skipped
        }
    }
    Add-SuiteResult 'Cross-implementation (Node reference server and ours)' $counts
}

function Invoke-ClientConformance {
    # The official client conformance suite (vendored, not on npm) drives our client through
    # tests/DurableStreams.ClientConformance.Adapter against the Node reference server, which the suite starts itself.
    # shared/ is read-only on CI, so the suite is copied to artifacts/client-conformance/suite and installed there with
    # npm ci from the lock file pinned next to the adapter (only when that lock file changed).
    $suiteSource = if ($env:DS_CLIENT_CONFORMANCE_SUITE) { $env:DS_CLIENT_CONFORMANCE_SUITE }
    else { Join-Path $root '..' 'shared' 'vendor' 'client-conformance-tests' }
    $missing = if (-not (Test-Path -LiteralPath (Join-Path $suiteSource 'package.json'))) { "the suite was not found at $suiteSource (set DS_CLIENT_CONFORMANCE_SUITE)" }
    elseif (-not (Get-Command npm -ErrorAction SilentlyContinue) -or -not (Get-Command node -ErrorAction SilentlyContinue)) { 'node/npm not found on PATH' }
    if ($missing) {
        if ($env:CI -eq 'true') { throw "CI=true needs the client conformance suite: $missing." }
        $script:notes.Add("Client conformance (.NET client): skipped ($missing)")
        return
    }
    $work = Join-Path $artifacts 'client-conformance'
    $suite = Join-Path $work 'suite'
    $adapterDir = Join-Path $root 'tests' 'DurableStreams.ClientConformance.Adapter'
    $lock = Join-Path $adapterDir 'suite' 'package-lock.json'
    New-Item -ItemType Directory -Force -Path $suite | Out-Null
    foreach ($item in Get-ChildItem -LiteralPath $suite -Exclude 'node_modules') { Remove-Item -LiteralPath $item.FullName -Recurse -Force }
    foreach ($item in Get-ChildItem -LiteralPath $suiteSource -Exclude 'node_modules') { Copy-Item -LiteralPath $item.FullName -Destination $suite -Recurse -Force }
    Copy-Item -LiteralPath $lock -Destination $suite -Force
    $stamp = Join-Path $suite 'node_modules' '.package-lock.sha256'
    $hash = (Get-FileHash -LiteralPath $lock -Algorithm SHA256).Hash
    if (-not (Test-Path -LiteralPath $stamp) -or (Get-Content -Raw -LiteralPath $stamp).Trim() -ne $hash) {
        Push-Location $suite
        try { Exec { npm ci --no-audit --no-fund } 'npm ci (client conformance suite)' }
        finally { Pop-Location }
        Set-Content -LiteralPath $stamp -Value $hash
    }
    $adapterName = if ($IsWindows) { 'DurableStreams.ClientConformance.Adapter.exe' } else { 'DurableStreams.ClientConformance.Adapter' }
    $adapter = Join-Path $artifacts 'bin' 'DurableStreams.ClientConformance.Adapter' $Configuration.ToLowerInvariant() $adapterName
    if (-not (Test-Path -LiteralPath $adapter)) { throw "the adapter was not built: $adapter" }
    $log = Join-Path $work 'run.log'
    Push-Location $suite
    try {
        $global:LASTEXITCODE = 0
        & npx --no-install tsx src/cli.ts --run $adapter *>&1 | Tee-Object -FilePath $log | Out-Host
        $exitCode = $LASTEXITCODE
    }
    finally { Pop-Location }
    $text = Get-Content -Raw -LiteralPath $log
    $counts = @{}
    foreach ($name in 'Passed', 'Failed', 'Skipped') {
        if ($text -notmatch "(?m)^$($name): (\d+)") { throw "the client conformance runner exited with code $exitCode and printed no totals (see $log)." }
        $counts[$name] = [int]$Matches[1]
    }
    if ($exitCode -ne 0 -and $counts.Failed -eq 0) {
        throw "the client conformance runner exited with code $exitCode although it reports no failed test (see $log)."
    }
    Add-SuiteResult 'Client conformance (.NET client, Node reference server)' ([pscustomobject]$counts)
}

function Invoke-PesterTests {
    $summary = Invoke-PesterRun -Name 'pester' -ExcludeTag 'Interop'
    if ($summary) { Add-SuiteResult 'Pester' $summary }
}

function Invoke-PesterRun {
    # Runs Pester in a child pwsh and returns its counts; null (with a note) when there are no test files.
    param([string]$Name, [string[]]$Tag = @(), [string[]]$ExcludeTag = @())
    $testDir = Join-Path $root 'tests' 'PowerShell'
    $testFiles = @(Get-ChildItem -Path (Join-Path $testDir '*.Tests.ps1') -ErrorAction SilentlyContinue)
    if ($testFiles.Count -eq 0) {
        $script:notes.Add('Pester: skipped (no tests/PowerShell/*.Tests.ps1 files)')
        return $null
    }

    # Pester comes from NuGet through a restore-only project; its global-packages folder honours NUGET_PACKAGES.
    $testDeps = Join-Path $root 'scripts' 'testdeps' 'testdeps.csproj'
    $global:LASTEXITCODE = 0
    $assetsFile = (dotnet msbuild $testDeps -t:Restore -getProperty:ProjectAssetsFile | Out-String).Trim()
    if ($LASTEXITCODE -ne 0) { throw "restoring $testDeps failed with exit code ${LASTEXITCODE}: $assetsFile" }
    $assets = Get-Content -Raw -LiteralPath $assetsFile | ConvertFrom-Json
    $packages = @($assets.packageFolders.PSObject.Properties.Name)[0]
    $download = @($assets.project.frameworks.PSObject.Properties.Value.downloadDependencies | Where-Object name -EQ 'Pester')[0]
    $version = $download.version.Trim('[', ']').Split(',')[0].Trim()
    $pesterModule = Join-Path $packages 'pester' $version 'tools' 'Pester.psd1'

    # A child pwsh loads Pester and any freshly built binary module anew (a binary module cannot be unloaded).
    $summaryFile = Join-Path $testResults "$Name-summary.json"
    if (Test-Path -LiteralPath $summaryFile) { Remove-Item -LiteralPath $summaryFile }
    $global:LASTEXITCODE = 0
    $env:DURABLESTREAMS_MODULE_PATH = $moduleDir
    $filters = @()
    if ($Tag.Count -gt 0) { $filters += '-Tag'; $filters += ($Tag -join ',') }
    if ($ExcludeTag.Count -gt 0) { $filters += '-ExcludeTag'; $filters += ($ExcludeTag -join ',') }
    dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $root 'scripts' 'Invoke-PesterTests.ps1') `
        -PesterModule $pesterModule -TestPath $testDir -ResultsDirectory $testResults -Configuration $Configuration -Name $Name @filters | Out-Host
    $exitCode = $LASTEXITCODE
    if (-not (Test-Path -LiteralPath $summaryFile)) {
        throw "the Pester child process exited with code $exitCode and wrote no summary."
    }
    $summary = Get-Content -Raw -LiteralPath $summaryFile | ConvertFrom-Json
    if ($exitCode -ne 0 -and $summary.Failed -eq 0) {
        throw "the Pester child process exited with code $exitCode although it reports no failed test."
    }
    $summary
}

# The fewest tests each suite must run, a little below today's counts, so a run that found no tests (a broken filter, a
# runner that exits early, a discovery failure) cannot pass. Under CI=true a suite counts the tests it ran (passed +
# failed); elsewhere skipped tests count too, since a developer machine may lack PostgreSQL, Chromium or LazyFS.
# Raise a number when a suite grows a lot; never lower one to make a run pass.
$script:MinimumTests = [ordered]@{
    'xUnit'                 = 1700
    'Browser (Chromium)'    = 14
    'Conformance ('         = 330
    'Pester'                = 150
    'Cross-implementation ' = 36
    'Client conformance '   = 260
    'Packages and sample'   = 8
}

function Get-MinimumTests {
    param([string]$Name)
    foreach ($prefix in $script:MinimumTests.Keys) {
        if ($Name.StartsWith($prefix, [StringComparison]::Ordinal)) { return $script:MinimumTests[$prefix] }
    }
    return 0
}

function Add-SuiteResult {
    param([string]$Name, $Counts)
    $suite = [pscustomobject]@{
        Name = $Name; Passed = [int]$Counts.Passed; Failed = [int]$Counts.Failed; Skipped = [int]$Counts.Skipped
    }
    $script:suites.Add($suite)
    $minimum = Get-MinimumTests $Name
    $ran = if ($env:CI -eq 'true') { $suite.Passed + $suite.Failed } else { $suite.Passed + $suite.Failed + $suite.Skipped }
    if ($ran -lt $minimum) {
        $what = if ($env:CI -eq 'true') { 'ran' } else { 'found' }
        $script:stepFailures.Add("${Name}: $what $ran tests, fewer than the minimum of $minimum (build.ps1 `$MinimumTests)")
    }
}

function Invoke-Step {
    # Runs one step; a failure is recorded and reported at the end instead of stopping the remaining suites.
    param([string]$Name, [scriptblock]$Body)
    try {
        $null = & $Body
        return $true
    }
    catch {
        $script:stepFailures.Add("${Name}: $($_.Exception.Message)")
        Write-Host "ERROR: $Name failed: $($_.Exception.Message)"
        return $false
    }
}

function Invoke-TestRun {
    param([switch]$ConformanceOnly)

    $script:suites = [System.Collections.Generic.List[object]]::new()
    $script:stepFailures = [System.Collections.Generic.List[string]]::new()
    $script:notes = [System.Collections.Generic.List[string]]::new()
    $script:failedTests = [System.Collections.Generic.List[string]]::new()
    try {
        if (Invoke-Step 'build' { Invoke-Build }) {
            $moduleBuilt = $false
            if (-not $ConformanceOnly) {
                $moduleBuilt = Invoke-Step 'module' { Invoke-ModuleLayout }
                Invoke-Step 'xUnit' { Invoke-XUnit } | Out-Null
                Invoke-Step 'Browser (Chromium)' { Invoke-BrowserTests } | Out-Null
                Invoke-Step 'Packages and sample' { Invoke-PackageTests } | Out-Null
            }
            foreach ($store in 'memory', 'file') {
                Invoke-Step "Conformance ($store)" { Invoke-Conformance -Store $store } | Out-Null
            }
            # The registry hook appends on every create and delete, and retention policies for names the suite does not
            # use keep the retention job running; the suite must notice neither.
            Invoke-Step 'Conformance (file, --registry, retention)' { Invoke-Conformance -Store file -Registry -Retention } | Out-Null
            # The third run needs PostgreSQL binaries to start a throw-away cluster (.ci/run installs them on CI): three
            # nodes on one database, the suite (subscriptions included) against each node while all three run.
            if (Find-PostgresBin) {
                Invoke-Step 'Conformance (postgres, 3 nodes)' { Invoke-Conformance -Store postgres -Nodes 3 } | Out-Null
            }
            elseif ($env:CI -eq 'true') {
                Invoke-Step 'Conformance (postgres, 3 nodes)' {
                    throw 'CI=true needs PostgreSQL binaries (initdb, pg_ctl); install postgresql-15 or set DS_PG_BIN.'
                } | Out-Null
            }
            else {
                $script:notes.Add('Conformance (postgres): skipped (no PostgreSQL binaries; install postgresql-15 or set DS_PG_BIN)')
            }
            if (-not $ConformanceOnly -and $moduleBuilt) {
                Invoke-Step 'Pester' { Invoke-PesterTests } | Out-Null
            }
            if (-not $ConformanceOnly) {
                Invoke-Step 'Cross-implementation' { Invoke-Interop -WithPester:$moduleBuilt } | Out-Null
                Invoke-Step 'Client conformance' { Invoke-ClientConformance } | Out-Null
            }
        }
    }
    finally {
        # Leave no MSBuild or compiler server process behind (CI waits for every child process).
        dotnet build-server shutdown | Out-Null
    }

    Write-Host ''
    $passed = 0; $failed = 0; $skipped = 0
    foreach ($suite in $script:suites) {
        Write-Host "$($suite.Name): $($suite.Passed) passed, $($suite.Failed) failed, $($suite.Skipped) skipped"
        $passed += $suite.Passed; $failed += $suite.Failed; $skipped += $suite.Skipped
    }
    foreach ($test in $script:failedTests) { Write-Host "FAILED TEST: $test" }
    foreach ($note in $script:notes) { Write-Host $note }
    foreach ($failure in $script:stepFailures) { Write-Host "FAILED: $failure" }
    # A broken step (build, module layout, a crashed runner, too few tests) counts as one failure: a run whose tests
    # never ran must not read "0 failed".
    $failed += $script:stepFailures.Count
    Write-Host "Total: $passed passed, $failed failed, $skipped skipped"
    return [int]($failed -gt 0 -or $script:stepFailures.Count -gt 0)
}

Push-Location $root
try {
    switch ($Task) {
        'build' {
            Assert-Dotnet
            Invoke-Build
        }
        'test' {
            Assert-Dotnet
            $exitCode = Invoke-TestRun
        }
        'conformance' {
            Assert-Dotnet
            $exitCode = Invoke-TestRun -ConformanceOnly
        }
        'module' {
            Assert-Dotnet
            Invoke-Build
            Invoke-ModuleLayout
        }
        'pack' {
            Assert-Dotnet
            Invoke-Pack
        }
        'install' {
            Assert-Dotnet
            Invoke-Build
            Invoke-ModuleLayout
            Invoke-Pack
            Invoke-Install
        }
        'clean' {
            if (Test-Path -LiteralPath $artifacts) {
                Remove-Item -LiteralPath $artifacts -Recurse -Force
            }
        }
        'bench' {
            Assert-Dotnet
            Exec { dotnet run -c Release --project (Join-Path $root 'scripts' 'bench') -- @BenchArgs } 'bench'
        }
    }
}
finally {
    Pop-Location
}

if ($Task -in 'test', 'conformance') {
    exit $exitCode
}
