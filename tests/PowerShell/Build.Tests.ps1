#Requires -Version 7.6
# build.ps1's reading of TRX files: the counts of each suite and the names of failed tests printed at the end of a run
# (CI shows only the tail of the output). The functions are taken from build.ps1 itself and run under the strict mode
# build.ps1 sets, so a TRX shape they cannot read fails here rather than breaking a CI run's summary.

BeforeAll {
    $source = Get-Content -Raw -LiteralPath (Join-Path $PSScriptRoot '..' '..' 'build.ps1')
    $ast = [System.Management.Automation.Language.Parser]::ParseInput($source, [ref]$null, [ref]$null)
    $script:functions = $ast.FindAll({
            param($node)
            $node -is [System.Management.Automation.Language.FunctionDefinitionAst] -and $node.Name -in 'Add-FailedTrxTest', 'Get-TrxCount'
        }, $true) | ForEach-Object { $_.Extent.Text }

    # Counters as the VSTest TRX logger writes them: every attribute present, the given ones set.
    function script:Write-Trx([string]$Path, [string]$Results, [hashtable]$Counters) {
        $all = [ordered]@{ total = 0; executed = 0; passed = 0; failed = 0; error = 0; timeout = 0; aborted = 0; inconclusive = 0; notExecuted = 0 }
        foreach ($key in $Counters.Keys) { $all[$key] = $Counters[$key] }
        $attributes = ($all.GetEnumerator() | ForEach-Object { "$($_.Key)=""$($_.Value)""" }) -join ' '
        Set-Content -LiteralPath $Path -Value @"
<?xml version="1.0" encoding="utf-8"?>
<TestRun id="1" name="run" xmlns="http://microsoft.com/schemas/VisualStudio/TeamTest/2010">
  $Results
  <ResultSummary outcome="Completed"><Counters $attributes /></ResultSummary>
</TestRun>
"@
    }

    # Runs the two functions in a fresh scope under build.ps1's strict mode; returns the counts and the failed tests.
    function script:Read-Trx([string[]]$Files) {
        & {
            param($Definitions, $TrxFiles)
            Set-StrictMode -Version 3.0
            $ErrorActionPreference = 'Stop'
            foreach ($definition in $Definitions) { . ([scriptblock]::Create($definition)) }
            $script:failedTests = [System.Collections.Generic.List[string]]::new()
            $counts = Get-TrxCount $TrxFiles
            [pscustomobject]@{ Counts = $counts; Failed = @($script:failedTests) }
        } $script:functions $Files
    }
}

Describe 'build.ps1 TRX reading' {
    It 'takes both functions from build.ps1' {
        $script:functions | Should -HaveCount 2
    }

    It 'names each failed test with the first line of its message, and no passed test' {
        $trx = Join-Path $TestDrive 'failed.trx'
        Write-Trx $trx -Counters @{ total = 3; executed = 3; passed = 2; failed = 1 } -Results @'
<Results>
    <UnitTestResult testName="Tests.Passing" outcome="Passed" />
    <UnitTestResult testName="Tests.Failing" outcome="Failed"><Output><ErrorInfo><Message>

Assert.Equal() Failure: Values differ
Expected: 2
Actual:   1</Message></ErrorInfo></Output></UnitTestResult>
    <UnitTestResult testName="Tests.AlsoPassing" outcome="Passed" />
  </Results>
'@
        $read = Read-Trx $trx
        $read.Counts.Passed | Should -Be 2
        $read.Counts.Failed | Should -Be 1
        $read.Failed | Should -Be @('Tests.Failing: Assert.Equal() Failure: Values differ')
    }

    It 'reads a TRX without results (a project whose filter matched no test) under strict mode' {
        $trx = Join-Path $TestDrive 'empty.trx'
        Write-Trx $trx -Counters @{} -Results ''
        $read = Read-Trx $trx
        $read.Counts.Passed | Should -Be 0
        $read.Failed | Should -BeNullOrEmpty
    }

    It 'names a failed test that has no message' {
        $trx = Join-Path $TestDrive 'nomessage.trx'
        Write-Trx $trx -Counters @{ total = 1; executed = 1; failed = 1 } -Results '<Results><UnitTestResult testName="Tests.Crashed" outcome="Failed" /></Results>'
        (Read-Trx $trx).Failed | Should -Be @('Tests.Crashed: ')
    }
}
