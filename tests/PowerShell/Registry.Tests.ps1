#Requires -Version 7.6
# The stream registry from PowerShell: Start-DurableStreamServer -Registry, listing with Get-DurableStream, and -Name
# completion from the registry.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
}

Describe 'Listing streams from the registry' -Tag 'Integration' {
    BeforeAll {
        $script:server = Start-DurableStreamServer -Port 0 -InMemory -Registry
        $script:plain = Start-DurableStreamServer -Port 0 -InMemory
        New-DurableStream -Name 'orders/eu' -Server $script:server -ContentType 'application/json' | Out-Null
        New-DurableStream -Name 'orders/us' -Server $script:server | Out-Null
        New-DurableStream -Name 'audit' -Server $script:server | Out-Null
        New-DurableStream -Name 'temporary' -Server $script:server | Out-Null
        Remove-DurableStream -Name 'temporary' -Server $script:server -Confirm:$false
    }
    AfterAll {
        $script:server, $script:plain | Stop-DurableStreamServer
    }

    It 'lists every registered stream, sorted by name, with metadata and CreatedAt' {
        $streams = @(Get-DurableStream -Server $script:server)
        $streams.Name | Should -Be @('audit', 'orders/eu', 'orders/us')
        $streams[1] | Should -BeOfType ([DurableStreams.PowerShell.DurableStreamInfo])
        $streams[1].ContentType | Should -Be 'application/json'
        $streams[1].Uri | Should -Be ([uri]"$($script:server.BaseUri)orders/eu")
        $streams[1].CreatedAt | Should -BeGreaterThan ((Get-Date).AddMinutes(-5))
    }

    It 'lists by -BaseUri and filters with a wildcard -Name' {
        (Get-DurableStream -BaseUri $script:server.ServerUri).Count | Should -Be 3
        @(Get-DurableStream -Server $script:server -Name 'orders/*').Name | Should -Be @('orders/eu', 'orders/us')
    }

    It 'pipes listed streams into other stream cmdlets' {
        Write-DurableStream -Name 'audit' -Server $script:server -InputObject 'x'
        @(Get-DurableStream -Server $script:server -Name 'aud*' | Read-DurableStream) | Should -Be @('x')
    }

    It 'still binds stream URIs from the pipeline' {
        $uri = "$($script:server.BaseUri)audit"
        ($uri | Get-DurableStream).Name | Should -Be 'audit'
    }

    It 'writes RegistryNotFound for a server without a registry' {
        Get-DurableStream -Server $script:plain -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty
        $failures[0].FullyQualifiedErrorId | Should -Be 'RegistryNotFound,DurableStreams.PowerShell.GetDurableStreamCommand'
        $failures[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'completes -Name from the registry of the server on the command line' {
        $line = "Get-DurableStream -Server `$script:server -Name ord"
        $completions = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        $completions.CompletionMatches.CompletionText | Should -Be @('orders/eu', 'orders/us')
    }

    It 'completes nothing from a server without a registry' {
        $line = "Get-DurableStream -Server `$script:plain -Name ord"
        $completions = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        $completions.CompletionMatches | Should -BeNullOrEmpty
    }
}
