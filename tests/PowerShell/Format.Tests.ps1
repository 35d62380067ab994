#Requires -Version 7.6
# The table views fit 80 columns: no header wraps (ExpiresAt stays one word), BaseUri is not cut; dates are DateTime
# properties; durations read "0.5 s", not 00:00:00.5000000.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
    $script:server = Start-DurableStreamServer -Port 0 -InMemory
    function Format-80([Parameter(ValueFromPipeline)]$InputObject) {
        begin { $items = @() }
        process { $items += $InputObject }
        end { @(($items | Format-Table | Out-String -Width 80) -split "`r?`n" | Where-Object { $_.Trim() }) }
    }
}

AfterAll {
    $script:server | Stop-DurableStreamServer
}

Describe 'Views' -Tag 'Integration' {
    It 'shows streams in 80 columns with whole headers, dates and seconds' {
        $at = [DateTimeOffset]::new(2099, 1, 2, 3, 4, 5, [TimeSpan]::Zero)
        $streams = @(
            New-DurableStream "format/with-expiry-$([guid]::NewGuid().ToString('N').Substring(0, 6))" -ContentType application/json -ExpiresAt $at
            New-DurableStream "format/with-ttl-$([guid]::NewGuid().ToString('N').Substring(0, 6))" -ContentType text/plain -TimeToLive 1h
        )
        $streams[0].ExpiresAt | Should -BeOfType ([datetime])
        $streams[0].ExpiresAt | Should -Be $at.LocalDateTime

        $lines = $streams | Format-80

        $lines.Count | Should -Be 4 -Because ($lines -join "`n")   # header, rule, two rows: nothing wrapped
        $lines[0] -split '\s+' | Should -Be @('Name', 'ContentType', 'Closed', 'TimeToLive', 'ExpiresAt')
        $lines[2] | Should -Match ([regex]::Escape($streams[0].Name))
        $lines[2] | Should -Match ([regex]::Escape($at.LocalDateTime.ToString('yyyy-MM-dd HH:mm:ss')) + '$')
        $lines[3] | Should -Match '\b3600 s\b'
        $lines[3] | Should -Not -Match '01:00:00'
        $lines | ForEach-Object { $_.Length | Should -BeLessOrEqual 80 }
    }

    It 'shows servers in 80 columns without cutting BaseUri' {
        $lines = $script:server | Format-80
        $lines.Count | Should -Be 3 -Because ($lines -join "`n")
        $lines[0] -split '\s+' | Where-Object { $_ } | Should -Be @('Id', 'Running', 'Store', 'Port', 'BaseUri')
        $lines[2] | Should -Match ([regex]::Escape($script:server.BaseUri.ToString()) + '$')
        $script:server.StartTime | Should -BeOfType ([datetime])
    }

    It 'names a read timeout in seconds' {
        $stream = New-DurableStream "format/timeout-$([guid]::NewGuid().ToString('N'))" -ContentType text/plain
        $stream | Read-DurableStream -Follow -Timeout 500ms -ErrorAction SilentlyContinue -ErrorVariable failure
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'ReadTimeout,*'
        $failure[0].ToString() | Should -Match 'within 0\.5 s\.'
        $failure[0].ToString() | Should -Not -Match '00:00:00'
    }
}
