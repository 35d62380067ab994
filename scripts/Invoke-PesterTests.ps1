<#
.SYNOPSIS
    Runs the Pester tests in this (fresh) PowerShell process; build.ps1 starts it with `dotnet pwsh`.

.DESCRIPTION
    Imports the given Pester module, runs every *.Tests.ps1 under -TestPath, writes NUnit XML results to
    <ResultsDirectory>/<Name>.xml and the counts to <ResultsDirectory>/<Name>-summary.json
    ({ Passed, Failed, Skipped, Result }), and exits 0 when Pester's result is Passed, else 1.
    Failed counts failed tests plus failed blocks and containers (for example a BeforeAll or a file that does not parse);
    Skipped counts skipped and not-run tests.
    The tests import the module folder named by $env:DURABLESTREAMS_MODULE_PATH (build.ps1 sets it to
    artifacts/module/DurableStreams after laying the module out), else that folder relative to the repository.

.PARAMETER PesterModule
    Path to Pester.psd1 (build.ps1 restores it from NuGet through scripts/testdeps/testdeps.csproj).

.PARAMETER TestPath
    Folder holding the *.Tests.ps1 files.

.PARAMETER ResultsDirectory
    Folder for pester.xml and pester-summary.json.

.PARAMETER Configuration
    Build configuration of the artifacts under test; exposed to the tests as $env:DURABLESTREAMS_CONFIGURATION.

.PARAMETER Tag
    Run only tests with one of these tags (build.ps1 runs the 'Interop' tests in their own summary line).

.PARAMETER ExcludeTag
    Leave out tests with one of these tags.

.PARAMETER Name
    Base name of the result files: <Name>.xml and <Name>-summary.json (default 'pester').
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$PesterModule,
    [Parameter(Mandatory)][string]$TestPath,
    [Parameter(Mandatory)][string]$ResultsDirectory,
    [ValidateSet('Debug', 'Release')][string]$Configuration = 'Release',
    [string[]]$Tag = @(),
    [string[]]$ExcludeTag = @(),
    [string]$Name = 'pester'
)

$ErrorActionPreference = 'Stop'
$PSStyle.OutputRendering = 'PlainText'
$env:NO_COLOR = '1'
$env:DURABLESTREAMS_CONFIGURATION = $Configuration

Import-Module $PesterModule -Force

New-Item -ItemType Directory -Force -Path $ResultsDirectory | Out-Null
$pesterConfig = New-PesterConfiguration
$pesterConfig.Run.Path = $TestPath
$pesterConfig.Run.PassThru = $true
$pesterConfig.Output.Verbosity = 'Detailed'
if ($Tag.Count -gt 0) { $pesterConfig.Filter.Tag = $Tag }
if ($ExcludeTag.Count -gt 0) { $pesterConfig.Filter.ExcludeTag = $ExcludeTag }
$pesterConfig.TestResult.Enabled = $true
$pesterConfig.TestResult.OutputFormat = 'NUnitXml'
$pesterConfig.TestResult.OutputPath = Join-Path $ResultsDirectory "$Name.xml"

$result = Invoke-Pester -Configuration $pesterConfig

[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    # With a tag filter, the tests it leaves out are NotRun: they belong to the other run, not to this one's skips.
    Skipped = $result.SkippedCount + $(if ($Tag.Count -gt 0 -or $ExcludeTag.Count -gt 0) { 0 } else { $result.NotRunCount })
    Result  = $result.Result
} | ConvertTo-Json | Set-Content -LiteralPath (Join-Path $ResultsDirectory "$Name-summary.json")

exit ([int]($result.Result -ne 'Passed'))
