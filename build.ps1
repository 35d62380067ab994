<#
.SYNOPSIS
    Builds, tests and packs DurableStreams for .NET.

.DESCRIPTION
    The one front door for developers and CI. Run it with the repository's local PowerShell tool:

        dotnet tool restore
        dotnet pwsh ./build.ps1 test

    Tasks:
      build        dotnet build DurableStreams.sln.
      test         build, then xUnit (dotnet test; TRX files in artifacts/test-results), the official conformance
                   suite against `durable-streams serve` once per store (--memory, then the file store in a fresh
                   temp data directory), and Pester (tests/PowerShell/*.Tests.ps1, run in a child pwsh) when such
                   files exist.
      conformance  build, then the conformance suite only, against both stores.
      pack         dotnet pack the durable-streams tool into artifacts/nupkg.
      clean        delete artifacts/.

    test and conformance keep going after a failing suite, print one line per suite and end with exactly one
    plain line "Total: N passed, N failed, N skipped". The exit code is 1 when a test failed or a step broke
    (a build error, a crashed runner), else 0.

.PARAMETER Task
    build (default), test, conformance, clean or pack.

.PARAMETER Configuration
    Release (default) or Debug.

.EXAMPLE
    dotnet pwsh ./build.ps1 test

.EXAMPLE
    dotnet pwsh ./build.ps1 conformance -Configuration Debug
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'conformance', 'clean', 'pack', 'bench')]
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
$artifacts = Join-Path $root 'artifacts'
$solution = Join-Path $root 'DurableStreams.sln'
$testResults = Join-Path $artifacts 'test-results'

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

function Get-TrxCount {
    param([string[]]$TrxFiles)
    $passed = 0; $failed = 0; $skipped = 0
    foreach ($file in $TrxFiles) {
        $counters = ([xml](Get-Content -Raw -LiteralPath $file)).TestRun.ResultSummary.Counters
        $passed += [int]$counters.passed
        $failed += [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        # The VSTest TRX logger leaves xUnit v3 skips out of every counter except total, so count them as total - executed.
        $skipped += [Math]::Max([int]$counters.notExecuted, [int]$counters.total - [int]$counters.executed)
    }
    [pscustomobject]@{ Passed = $passed; Failed = $failed; Skipped = $skipped }
}

function Invoke-XUnit {
    if (Test-Path -LiteralPath $testResults) {
        Get-ChildItem -LiteralPath $testResults -Filter *.trx | Remove-Item
    }
    # One TRX per test project. The logger's default names are made unique ("…[1].trx") when two projects finish
    # in the same second; a fixed LogFileName would be overwritten by each project in turn.
    $global:LASTEXITCODE = 0
    dotnet test $solution -c $Configuration --no-build --logger trx --results-directory $testResults | Out-Host
    $exitCode = $LASTEXITCODE

    $trx = @(Get-ChildItem -LiteralPath $testResults -Filter *.trx -ErrorAction SilentlyContinue | ForEach-Object FullName)
    if ($trx.Count -eq 0) {
        throw "dotnet test exited with code $exitCode and wrote no TRX file to $testResults."
    }
    $counts = Get-TrxCount $trx
    Add-SuiteResult 'xUnit' $counts
    if ($exitCode -ne 0 -and $counts.Failed -eq 0) {
        throw "dotnet test exited with code $exitCode although its TRX files report no failed test."
    }
}

function Invoke-Conformance {
    param([string]$Store)
    $result = & (Join-Path $root 'scripts' 'Invoke-Conformance.ps1') -Configuration $Configuration -Store $Store
    Add-SuiteResult "Conformance ($Store)" $result
    Write-Host ("Conformance ($Store) took {0:N1} s" -f $result.Duration.TotalSeconds)
    if ($result.ServerStoppedCleanly -eq $false) {
        throw "the server exited with code $($result.ServerExitCode) after SIGTERM instead of 0."
    }
}

function Invoke-PesterTests {
    $testDir = Join-Path $root 'tests' 'PowerShell'
    $testFiles = @(Get-ChildItem -Path (Join-Path $testDir '*.Tests.ps1') -ErrorAction SilentlyContinue)
    if ($testFiles.Count -eq 0) {
        $script:notes.Add('Pester: skipped (no tests/PowerShell/*.Tests.ps1 files)')
        return
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
    $summaryFile = Join-Path $testResults 'pester-summary.json'
    if (Test-Path -LiteralPath $summaryFile) { Remove-Item -LiteralPath $summaryFile }
    $global:LASTEXITCODE = 0
    dotnet pwsh -NoProfile -NonInteractive -File (Join-Path $root 'scripts' 'Invoke-PesterTests.ps1') `
        -PesterModule $pesterModule -TestPath $testDir -ResultsDirectory $testResults -Configuration $Configuration | Out-Host
    $exitCode = $LASTEXITCODE
    if (-not (Test-Path -LiteralPath $summaryFile)) {
        throw "the Pester child process exited with code $exitCode and wrote no summary."
    }
    $summary = Get-Content -Raw -LiteralPath $summaryFile | ConvertFrom-Json
    Add-SuiteResult 'Pester' $summary
    if ($exitCode -ne 0 -and $summary.Failed -eq 0) {
        throw "the Pester child process exited with code $exitCode although it reports no failed test."
    }
}

function Add-SuiteResult {
    param([string]$Name, $Counts)
    $script:suites.Add([pscustomobject]@{
            Name = $Name; Passed = [int]$Counts.Passed; Failed = [int]$Counts.Failed; Skipped = [int]$Counts.Skipped
        })
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
    try {
        if (Invoke-Step 'build' { Invoke-Build }) {
            if (-not $ConformanceOnly) {
                Invoke-Step 'xUnit' { Invoke-XUnit } | Out-Null
            }
            foreach ($store in 'memory', 'file') {
                Invoke-Step "Conformance ($store)" { Invoke-Conformance -Store $store } | Out-Null
            }
            if (-not $ConformanceOnly) {
                Invoke-Step 'Pester' { Invoke-PesterTests } | Out-Null
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
    foreach ($note in $script:notes) { Write-Host $note }
    foreach ($failure in $script:stepFailures) { Write-Host "FAILED: $failure" }
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
        'pack' {
            Assert-Dotnet
            Exec { dotnet pack (Join-Path $root 'src' 'DurableStreams.Cli') -c $Configuration -o (Join-Path $artifacts 'nupkg') } "dotnet pack -c $Configuration"
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
