<#
.SYNOPSIS
    Runs the Pester tests in this (fresh) PowerShell process; build.ps1 starts it with `dotnet pwsh`.

.DESCRIPTION
    Imports the given Pester module, runs every *.Tests.ps1 under -TestPath, writes NUnit XML results to
    <ResultsDirectory>/pester.xml and the counts to <ResultsDirectory>/pester-summary.json
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
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$PesterModule,
    [Parameter(Mandatory)][string]$TestPath,
    [Parameter(Mandatory)][string]$ResultsDirectory,
    [ValidateSet('Debug', 'Release')][string]$Configuration = 'Release'
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
$pesterConfig.TestResult.Enabled = $true
$pesterConfig.TestResult.OutputFormat = 'NUnitXml'
$pesterConfig.TestResult.OutputPath = Join-Path $ResultsDirectory 'pester.xml'

$result = Invoke-Pester -Configuration $pesterConfig

[pscustomobject]@{
    Passed  = $result.PassedCount
    Failed  = $result.FailedCount + $result.FailedBlocksCount + $result.FailedContainersCount
    Skipped = $result.SkippedCount + $result.NotRunCount
    Result  = $result.Result
} | ConvertTo-Json | Set-Content -LiteralPath (Join-Path $ResultsDirectory 'pester-summary.json')

exit ([int]($result.Result -ne 'Passed'))
