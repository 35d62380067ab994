#Requires -Version 7.6
# Retention (issue 18) in the module: Start-DurableStreamServer's retention parameters, Get-DurableStream's RetainedStart
# (list view), and Read-DurableStream below the retained start (OffsetBeforeRetainedStart).

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force

    function Offset([long]$Position) { '0000000000000000_{0:D16}' -f $Position }

    # One retention pass over a stream, as the server's retention job would run it (the job's timing is not under test here).
    function Invoke-Retention($Server, [string]$Name, [long]$MaxBytes) {
        $hostProperty = [DurableStreams.PowerShell.DurableStreamServerInfo].GetProperty('Host', [System.Reflection.BindingFlags]'Instance,NonPublic')
        $store = [DurableStreams.Core.Retention.IStreamRetention]$hostProperty.GetValue($Server).Store
        $policy = [DurableStreams.Core.Retention.RetentionPolicy]::new($null, $MaxBytes)
        $store.ApplyRetentionAsync($Name, $policy, [System.Threading.CancellationToken]::None).AsTask().GetAwaiter().GetResult()
    }
}

AfterAll {
    Get-DurableStreamServer | Stop-DurableStreamServer
}

Describe 'Retention in the module' -Tag 'Integration' {
    BeforeAll {
        $script:server = Start-DurableStreamServer -Port 0 -InMemory -RetentionMaxBytes 5 -RetentionMaxAge '7d' -RetentionInterval 1h `
            -RetentionPolicy @{ Streams = 'keep/**' }, @{ Streams = 'logs/**'; MaxAge = '12h'; MaxBytes = 1GB }
        $script:uri = "$($script:server.BaseUri)trimmed"
        New-DurableStream -Uri $script:uri -ContentType text/plain -Value 'aaaaa' | Out-Null
        Write-DurableStream -Uri $script:uri -InputObject 'bbbbb' -NoNewline
        Write-DurableStream -Uri $script:uri -InputObject 'ccccc' -NoNewline
        $result = Invoke-Retention $script:server 'trimmed' 5
        $result.RetainedStart.Position | Should -Be 10
    }

    It 'passes the retention parameters to the server' {
        $hostProperty = [DurableStreams.PowerShell.DurableStreamServerInfo].GetProperty('Host', [System.Reflection.BindingFlags]'Instance,NonPublic')
        $options = $hostProperty.GetValue($script:server).Options
        $options.RetentionInterval | Should -Be ([TimeSpan]::FromHours(1))
        $options.Retention.Default.MaxAge | Should -Be ([TimeSpan]::FromDays(7))
        $options.Retention.Default.MaxBytes | Should -Be 5
        $options.Retention.Rules.Streams | Should -Be @('keep/**', 'logs/**')
        $options.Retention.Resolve('keep/a').DropsData | Should -BeFalse
        $options.Retention.Resolve('logs/a').MaxBytes | Should -Be 1GB
        $options.Retention.Resolve('logs/a').MaxAge | Should -Be ([TimeSpan]::FromHours(12))
    }

    It 'Get-DurableStream shows RetainedStart, in the list view' {
        $info = Get-DurableStream -Uri $script:uri

        $info.RetainedStart | Should -Be (Offset 10)
        ($info | Format-List | Out-String) | Should -Match "RetainedStart\s*:\s*$(Offset 10)"
    }

    It 'Read-DurableStream from -1 returns what remains' {
        Read-DurableStream -Uri $script:uri | Should -Be 'ccccc'
    }

    It 'Read-DurableStream below the retained start writes OffsetBeforeRetainedStart saying where to restart' {
        Read-DurableStream -Uri $script:uri -Offset (Offset 5) -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty

        $failures[0].FullyQualifiedErrorId | Should -BeLike 'OffsetBeforeRetainedStart,*'
        $failures[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $failures[0].ToString() | Should -BeLike "Offset $(Offset 5) of stream '*' is before its retained start $(Offset 10) (retention or compaction dropped it); read from the start with -Offset -1 (or $(Offset 10))."
        $failures[0].ErrorDetails.RecommendedAction | Should -Be 'Read-DurableStream -Offset -1'
    }

    It 'refuses an unquoted 7d, which PowerShell reads as the decimal 7, instead of taking it as 7 seconds' {
        { Start-DurableStreamServer -Port 0 -InMemory -RetentionMaxAge 7d } | Should -Throw -ErrorId 'ParameterArgumentTransformationError,DurableStreams.PowerShell.StartDurableStreamServerCommand'
        { Start-DurableStreamServer -Port 0 -InMemory -RetentionMaxAge 7d } | Should -Throw "*quote a duration with a unit, for example '7d'*"
        @(Get-DurableStreamServer).Count | Should -Be 1
    }

    It 'refuses a -RetentionPolicy rule without Streams or with an unknown key' {
        { Start-DurableStreamServer -Port 0 -InMemory -RetentionPolicy @{ MaxAge = '7d' } } |
            Should -Throw -ErrorId 'InvalidRetentionPolicy,DurableStreams.PowerShell.StartDurableStreamServerCommand'
        { Start-DurableStreamServer -Port 0 -InMemory -RetentionPolicy @{ Streams = 'a/**'; MaxAges = '7d' } } |
            Should -Throw -ErrorId 'InvalidRetentionPolicy,DurableStreams.PowerShell.StartDurableStreamServerCommand'
        @(Get-DurableStreamServer).Count | Should -Be 1
    }
}
