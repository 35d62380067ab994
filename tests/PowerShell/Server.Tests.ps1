#Requires -Version 7.6
# Start-/Stop-/Get-DurableStreamServer: the in-process Kestrel server, both stores, LMDB inside pwsh, module removal.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force

    function Test-PortOpen([int]$Port) {
        $client = [System.Net.Sockets.TcpClient]::new()
        try { $client.Connect('127.0.0.1', $Port); $true } catch { $false } finally { $client.Dispose() }
    }
    function New-TempDataPath {
        Join-Path ([IO.Path]::GetTempPath()) ("ds-pester-" + [guid]::NewGuid().ToString('N'))
    }
}

AfterAll {
    Get-DurableStreamServer | Stop-DurableStreamServer
}

Describe 'Start-DurableStreamServer -InMemory' -Tag 'Integration' {
    AfterEach {
        Get-DurableStreamServer | Stop-DurableStreamServer
    }

    It 'starts on a free port and describes itself' {
        $before = Get-Date
        $server = Start-DurableStreamServer -Port 0 -InMemory

        $server | Should -BeOfType ([DurableStreams.PowerShell.DurableStreamServerInfo])
        $server.Port | Should -BeGreaterThan 0
        $server.HostName | Should -Be '127.0.0.1'
        $server.BaseUri.ToString() | Should -Be "http://127.0.0.1:$($server.Port)/v1/stream/"
        $server.ServerUri.ToString() | Should -Be "http://127.0.0.1:$($server.Port)/"
        $server.Store | Should -Be 'Memory'
        $server.DataPath | Should -BeNullOrEmpty
        $server.Durability | Should -BeNullOrEmpty
        $server.IsRunning | Should -BeTrue
        $server.StartTime | Should -BeOfType ([datetime])
        $server.StartTime | Should -BeGreaterOrEqual $before.AddSeconds(-1)
        Test-PortOpen $server.Port | Should -BeTrue
    }

    It 'speaks HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1 with -H2c' {
        $server = Start-DurableStreamServer -Port 0 -InMemory -H2c
        $client = [System.Net.Http.HttpClient]::new()
        try {
            $request = [System.Net.Http.HttpRequestMessage]::new([System.Net.Http.HttpMethod]::Get, $server.ServerUri.AbsoluteUri + 'healthz')
            $request.Version = [System.Net.HttpVersion]::Version20
            $request.VersionPolicy = [System.Net.Http.HttpVersionPolicy]::RequestVersionExact
            $response = $client.SendAsync($request).GetAwaiter().GetResult()
            $response.Version | Should -Be ([System.Net.HttpVersion]::Version20)
            $response.StatusCode | Should -Be ([System.Net.HttpStatusCode]::OK)
            (Invoke-WebRequest -Uri "$($server.ServerUri)healthz" -SkipHttpErrorCheck).StatusCode | Should -Be 400
        }
        finally {
            $client.Dispose()
        }
    }

    It 'serves the inspector page at its ServerUri unless -NoUi' {
        $server = Start-DurableStreamServer -Port 0 -InMemory
        $plain = Start-DurableStreamServer -Port 0 -InMemory -NoUi

        $page = Invoke-WebRequest -Uri $server.ServerUri -SkipHttpErrorCheck
        $page.StatusCode | Should -Be 200
        $page.Headers['Content-Type'] | Should -Be 'text/html; charset=utf-8'
        (Invoke-WebRequest -Uri $plain.ServerUri -SkipHttpErrorCheck).StatusCode | Should -Be 404
    }

    It 'Show-DurableStream returns the URL of the stream view of the inspector page' {
        $server = Start-DurableStreamServer -Port 0 -InMemory

        $url = Show-DurableStream -Name 'orders/2026 12' -Server $server -Offset '0000000000000000_0000000000000042' -Live -NoBrowser

        $url | Should -BeOfType ([uri])
        $url.AbsoluteUri | Should -Be "http://127.0.0.1:$($server.Port)/?stream=orders%2F2026%2012&offset=0000000000000000_0000000000000042&live=1"
        (Show-DurableStream -Uri "$($server.BaseUri)events" -NoBrowser).AbsoluteUri | Should -Be "http://127.0.0.1:$($server.Port)/?stream=events"
    }

    It 'is listed by Get-DurableStreamServer until it is stopped' {
        $first = Start-DurableStreamServer -Port 0 -InMemory
        $second = Start-DurableStreamServer -Port 0 -InMemory

        $second.Port | Should -Not -Be $first.Port
        (Get-DurableStreamServer).Id | Should -Be @($first.Id, $second.Id)

        $first | Stop-DurableStreamServer

        $first.IsRunning | Should -BeFalse
        (Get-DurableStreamServer).Id | Should -Be @($second.Id)
        Test-PortOpen $first.Port | Should -BeFalse
    }

    It 'starts and stops twice in one session' {
        foreach ($round in 1, 2) {
            $server = Start-DurableStreamServer -Port 0 -InMemory
            New-DurableStream -Uri "$($server.BaseUri)round$round" -ContentType text/plain -Value "round $round" | Out-Null
            Read-DurableStream -Uri "$($server.BaseUri)round$round" | Should -Be "round $round"
            Stop-DurableStreamServer -Server $server
            Test-PortOpen $server.Port | Should -BeFalse
        }
        Get-DurableStreamServer | Should -BeNullOrEmpty
    }

    It 'applies -LongPollTimeout to long-poll reads' {
        $server = Start-DurableStreamServer -Port 0 -InMemory -LongPollTimeout 200ms
        $uri = "$($server.BaseUri)quiet"
        New-DurableStream -Uri $uri | Out-Null

        $response = Invoke-WebRequest -Uri "${uri}?offset=now&live=long-poll" -SkipHttpErrorCheck

        $response.StatusCode | Should -Be 204
    }

    It 'applies -MaxAppendBytes to appends' {
        $server = Start-DurableStreamServer -Port 0 -InMemory -MaxAppendBytes 16
        $uri = "$($server.BaseUri)small"
        New-DurableStream -Uri $uri -ContentType application/octet-stream | Out-Null

        Write-DurableStream -Uri $uri -InputObject ([byte[]]::new(64)) -ErrorAction SilentlyContinue -ErrorVariable failures

        $failures[0].FullyQualifiedErrorId | Should -BeLike 'PayloadTooLarge,*'
        $failures[0].CategoryInfo.Category | Should -Be 'LimitsExceeded'
    }

    It 'refuses -InMemory together with -DataPath' {
        { Start-DurableStreamServer -Port 0 -InMemory -DataPath $TestDrive } | Should -Throw -ErrorId 'AmbiguousParameterSet,DurableStreams.PowerShell.StartDurableStreamServerCommand'
    }

    It 'reports a taken port as ServerStartFailed' {
        $server = Start-DurableStreamServer -Port 0 -InMemory

        Start-DurableStreamServer -Port $server.Port -InMemory -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty

        $failures[0].FullyQualifiedErrorId | Should -BeLike 'ServerStartFailed,*'
        $failures[0].CategoryInfo.Category | Should -Be 'ResourceUnavailable'
        @(Get-DurableStreamServer).Count | Should -Be 1
    }
}

Describe 'Start-DurableStreamServer -DataPath (file store, native LMDB inside pwsh)' -Tag 'Integration' {
    BeforeEach {
        $script:dataPath = New-TempDataPath
    }
    AfterEach {
        Get-DurableStreamServer | Stop-DurableStreamServer
        if (Test-Path -LiteralPath $script:dataPath) { Remove-Item -LiteralPath $script:dataPath -Recurse -Force }
    }

    It 'ships liblmdb.so next to LightningDB.dll' -Skip:(-not $IsLinux) {
        Join-Path $script:modulePath 'LightningDB.dll' | Should -Exist
        Join-Path $script:modulePath 'liblmdb.so' | Should -Exist
    }

    It 'creates, appends and reads, and keeps the data across a restart on the same data path' {
        $server = Start-DurableStreamServer -Port 0 -DataPath $script:dataPath
        $server.Store | Should -Be 'File'
        $server.DataPath | Should -Be $script:dataPath
        $server.Durability | Should -Be 'Always'
        $uri = "$($server.BaseUri)orders"
        New-DurableStream -Uri $uri -ContentType application/json | Out-Null
        1..3 | ForEach-Object { @{ n = $_ } } | Write-DurableStream -Uri $uri
        (Read-DurableStream -Uri $uri).n | Should -Be 1, 2, 3
        $tail = (Get-DurableStream -Uri $uri).NextOffset
        $server | Stop-DurableStreamServer

        $again = Start-DurableStreamServer -Port 0 -DataPath $script:dataPath
        $uri = "$($again.BaseUri)orders"

        (Get-DurableStream -Uri $uri).NextOffset | Should -Be $tail
        (Read-DurableStream -Uri $uri).n | Should -Be 1, 2, 3
        @{ n = 4 } | Write-DurableStream -Uri $uri
        (Read-DurableStream -Uri $uri).n | Should -Be 1, 2, 3, 4
    }

    It 'resolves a relative -DataPath against the current location and honours -Durability' {
        Push-Location $TestDrive
        try {
            $server = Start-DurableStreamServer -Port 0 -DataPath 'relative-data' -Durability Interval -SyncInterval 50ms
        }
        finally {
            Pop-Location
        }
        $server.DataPath | Should -Be (Join-Path $TestDrive 'relative-data')
        $server.Durability | Should -Be 'Interval'
        Join-Path $TestDrive 'relative-data' | Should -Exist
    }

    It 'refuses a data path another server of the session uses' {
        $null = Start-DurableStreamServer -Port 0 -DataPath $script:dataPath

        Start-DurableStreamServer -Port 0 -DataPath $script:dataPath -ErrorAction SilentlyContinue -ErrorVariable failures | Should -BeNullOrEmpty

        $failures[0].FullyQualifiedErrorId | Should -BeLike 'DataPathInUse,*'
        $failures[0].CategoryInfo.Category | Should -Be 'ResourceBusy'
    }

    It 'refuses -SyncInterval without -Durability Interval' {
        { Start-DurableStreamServer -Port 0 -DataPath $script:dataPath -SyncInterval 1s } |
            Should -Throw -ErrorId 'SyncIntervalRequiresInterval,DurableStreams.PowerShell.StartDurableStreamServerCommand'
        Get-DurableStreamServer | Should -BeNullOrEmpty
    }
}

Describe 'Start-DurableStreamServer with tokens' -Tag 'Integration' {
    BeforeAll {
        function Get-Status([string]$Uri, [string]$Method = 'GET', [string]$Token) {
            $headers = @{}
            if ($Token) { $headers['Authorization'] = "Bearer $Token" }
            $body = if ($Method -in 'PUT', 'POST') { 'x' } else { $null }
            (Invoke-WebRequest -Uri $Uri -Method $Method -Headers $headers -Body $body -ContentType 'text/plain' -SkipHttpErrorCheck).StatusCode
        }
    }
    BeforeEach {
        $script:savedRead = $env:DS_READ_TOKENS
        $script:savedWrite = $env:DS_WRITE_TOKENS
        $env:DS_READ_TOKENS = $null
        $env:DS_WRITE_TOKENS = $null
    }
    AfterEach {
        Get-DurableStreamServer | Stop-DurableStreamServer
        $env:DS_READ_TOKENS = $script:savedRead
        $env:DS_WRITE_TOKENS = $script:savedWrite
    }

    It 'answers 401 without a token and 200 with -Token when started with -WriteToken' {
        $token = ConvertTo-SecureString 'server-secret' -AsPlainText -Force
        $server = Start-DurableStreamServer -Port 0 -InMemory -WriteToken $token
        $name = "protected-$([guid]::NewGuid().ToString('N'))"

        New-DurableStream $name -BaseUri $server.BaseUri -ContentType text/plain -ErrorAction SilentlyContinue -ErrorVariable failure | Should -BeNullOrEmpty
        $failure[0].FullyQualifiedErrorId | Should -BeLike 'Unauthorized,*'
        $failure[0].ToString() | Should -Match '401'

        New-DurableStream $name -BaseUri $server.BaseUri -ContentType text/plain -Token $token | Should -Not -BeNullOrEmpty
        'hello' | Write-DurableStream $name -BaseUri $server.BaseUri -Token $token
        Read-DurableStream $name -BaseUri $server.BaseUri -Token $token | Should -Be 'hello'
        Get-Status "$($server.BaseUri)$name" | Should -Be 401
        Get-Status "$($server.BaseUri)$name" -Token 'server-secret' | Should -Be 200
        Get-Status "$($server.BaseUri)$name" -Token 'wrong' | Should -Be 401
    }

    It 'lets a -ReadToken read but not write (403)' {
        $server = Start-DurableStreamServer -Port 0 -InMemory -ReadToken (ConvertTo-SecureString 'reader' -AsPlainText -Force) `
            -WriteToken (ConvertTo-SecureString 'writer' -AsPlainText -Force)
        $uri = "$($server.BaseUri)scoped"
        Get-Status $uri -Method PUT -Token 'reader' | Should -Be 403
        Get-Status $uri -Method PUT -Token 'writer' | Should -Be 201
        Get-Status $uri -Token 'reader' | Should -Be 200
        Get-Status $uri | Should -Be 401
    }

    It 'takes the tokens from $env:DS_WRITE_TOKENS and $env:DS_READ_TOKENS when no token parameter is given, as serve does' {
        $env:DS_WRITE_TOKENS = 'env-one, env-two'
        $env:DS_READ_TOKENS = 'env-reader'
        $server = Start-DurableStreamServer -Port 0 -InMemory
        $uri = "$($server.BaseUri)from-env"
        Get-Status $uri -Method PUT | Should -Be 401
        Get-Status $uri -Method PUT -Token 'env-two' | Should -Be 201
        Get-Status $uri -Token 'env-reader' | Should -Be 200
    }

    It 'needs no token when none is configured' {
        $server = Start-DurableStreamServer -Port 0 -InMemory
        Get-Status "$($server.BaseUri)open" -Method PUT | Should -Be 201
    }

    It 'refuses an empty token' {
        { Start-DurableStreamServer -Port 0 -InMemory -WriteToken (ConvertTo-SecureString ' ' -AsPlainText -Force) -ErrorAction Stop } |
            Should -Throw -ErrorId 'EmptyToken,DurableStreams.PowerShell.StartDurableStreamServerCommand'
        Get-DurableStreamServer | Should -BeNullOrEmpty
    }
}

Describe 'Exiting pwsh with a running server' -Tag 'Integration' {
    It 'exits normally, and the file store keeps what was written' {
        $dataPath = New-TempDataPath
        $pwsh = Join-Path $PSHOME ($IsWindows ? 'pwsh.exe' : 'pwsh')
        $manifest = Join-Path $script:modulePath 'DurableStreams.psd1'
        try {
            $script = "Import-Module '$manifest'; `$s = Start-DurableStreamServer -Port 0 -DataPath '$dataPath'; " +
                "New-DurableStream -Uri `"`$(`$s.BaseUri)kept`" -ContentType text/plain -Value 'kept' | Out-Null; exit 0"
            & $pwsh -NoProfile -NonInteractive -Command $script
            $LASTEXITCODE | Should -Be 0

            $server = Start-DurableStreamServer -Port 0 -DataPath $dataPath
            Read-DurableStream -Uri "$($server.BaseUri)kept" | Should -Be 'kept'
            $server | Stop-DurableStreamServer
        }
        finally {
            if (Test-Path -LiteralPath $dataPath) { Remove-Item -LiteralPath $dataPath -Recurse -Force }
        }
    }
}

Describe 'Remove-Module DurableStreams' -Tag 'Integration' {
    It 'stops the servers the session started, and the module imports again' {
        $memory = Start-DurableStreamServer -Port 0 -InMemory
        $dataPath = New-TempDataPath
        $file = Start-DurableStreamServer -Port 0 -DataPath $dataPath
        Test-PortOpen $memory.Port | Should -BeTrue

        Remove-Module DurableStreams

        Test-PortOpen $memory.Port | Should -BeFalse
        Test-PortOpen $file.Port | Should -BeFalse
        $memory.IsRunning | Should -BeFalse

        Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
        Get-DurableStreamServer | Should -BeNullOrEmpty
        # The file store released its directory, so a new server can open it.
        $reopened = Start-DurableStreamServer -Port 0 -DataPath $dataPath
        $reopened | Stop-DurableStreamServer
        Remove-Item -LiteralPath $dataPath -Recurse -Force
    }
}
