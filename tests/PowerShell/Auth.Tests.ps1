#Requires -Version 7.6
# The stream cmdlets against a token-protected server: -Token, -Credential and $env:STREAM_AUTH; the endpoint from
# $env:STREAM_URL (then http://localhost:4437) so -BaseUri is optional; stream names as the first positional argument.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force

    # The token-protected server is hosted outside the session's server list (not with Start-DurableStreamServer
    # -WriteToken, which Server.Tests.ps1 covers), since the endpoint defaults below are tested with no session server.
    Add-Type -LiteralPath (Join-Path $script:modulePath 'DurableStreams.Server.dll')
    $options = [DurableStreams.Server.DurableStreamServerOptions]::new()
    $options.Host = '127.0.0.1'
    $options.Port = 0
    $options.WriteTokens.Add('pester-secret')
    $script:tokenServer = [DurableStreams.Server.DurableStreamServer]::new($options, $null)
    $script:tokenServer.StartAsync([Threading.CancellationToken]::None).GetAwaiter().GetResult()
    $script:serverUri = $script:tokenServer.BaseUrl.ToString().TrimEnd('/')
    $script:token = ConvertTo-SecureString 'pester-secret' -AsPlainText -Force

    function New-StreamName { "auth-$([guid]::NewGuid().ToString('N'))" }
    function Assert-ErrorId($Records, [string]$ErrorId, [string]$Category) {
        @($Records).Count | Should -BeGreaterThan 0
        @($Records)[0].FullyQualifiedErrorId | Should -BeLike "$ErrorId,DurableStreams.PowerShell.*"
        @($Records)[0].CategoryInfo.Category | Should -Be $Category
    }
}

AfterAll {
    if ($script:tokenServer) { $script:tokenServer.DisposeAsync().AsTask().GetAwaiter().GetResult() }
}

Describe 'Authorization' -Tag 'Integration' {
    BeforeEach {
        $script:savedUrl = $env:STREAM_URL
        $script:savedAuth = $env:STREAM_AUTH
        $env:STREAM_URL = $null
        $env:STREAM_AUTH = $null
    }
    AfterEach {
        $env:STREAM_URL = $script:savedUrl
        $env:STREAM_AUTH = $script:savedAuth
    }

    It 'answers 401 as an Unauthorized error without a token' {
        $name = New-StreamName
        New-DurableStream $name -BaseUri $script:serverUri -ErrorAction SilentlyContinue -ErrorVariable failure | Should -BeNullOrEmpty
        Assert-ErrorId $failure 'Unauthorized' 'AuthenticationError'
        $failure[0].ToString() | Should -Match 'needs a token \(401\).*Pass -Token or -Credential, or set \$env:STREAM_AUTH'
        Get-DurableStream $name -BaseUri $script:serverUri -ErrorAction SilentlyContinue -ErrorVariable failure | Should -BeNullOrEmpty
        Assert-ErrorId $failure 'Unauthorized' 'AuthenticationError'
    }

    It 'creates, writes, reads, closes and removes with -Token' {
        $name = New-StreamName
        $stream = New-DurableStream $name -BaseUri $script:serverUri -ContentType application/json -Token $script:token
        $stream.Name | Should -Be $name
        @{ n = 1 }, @{ n = 2 } | Write-DurableStream $name -BaseUri $script:serverUri -Token $script:token
        (Read-DurableStream $name -BaseUri $script:serverUri -Token $script:token).n | Should -Be @(1, 2)
        Close-DurableStream $name -BaseUri $script:serverUri -Token $script:token -PassThru | ForEach-Object Closed | Should -BeTrue
        Remove-DurableStream $name -BaseUri $script:serverUri -Token $script:token -Confirm:$false
        Get-DurableStream $name -BaseUri $script:serverUri -Token $script:token -ErrorAction SilentlyContinue -ErrorVariable failure | Should -BeNullOrEmpty
        Assert-ErrorId $failure 'StreamNotFound' 'ObjectNotFound'
    }

    It 'sends the password of -Credential as the token' {
        $name = New-StreamName
        $credential = [pscredential]::new('anyone', $script:token)
        New-DurableStream $name -BaseUri $script:serverUri -ContentType text/plain -Credential $credential | Should -Not -BeNullOrEmpty
        'hello' | Write-DurableStream $name -BaseUri $script:serverUri -Credential $credential
        Read-DurableStream $name -BaseUri $script:serverUri -Credential $credential | Should -Be 'hello'
    }

    It 'sends $env:STREAM_AUTH as the Authorization header when no token is given' {
        $name = New-StreamName
        $env:STREAM_AUTH = 'Bearer pester-secret'
        New-DurableStream $name -BaseUri $script:serverUri -ContentType text/plain | Should -Not -BeNullOrEmpty
        'line' | Write-DurableStream $name -BaseUri $script:serverUri
        Read-DurableStream $name -BaseUri $script:serverUri | Should -Be 'line'
    }

    It 'prefers -Token over a wrong $env:STREAM_AUTH' {
        $env:STREAM_AUTH = 'Bearer wrong'
        New-DurableStream (New-StreamName) -BaseUri $script:serverUri -Token $script:token | Should -Not -BeNullOrEmpty
    }

    It 'refuses -Token with -Credential' {
        { Get-DurableStream x -BaseUri $script:serverUri -Token $script:token -Credential ([pscredential]::new('u', $script:token)) -ErrorAction Stop } |
            Should -Throw -ErrorId 'TokenAndCredential,DurableStreams.PowerShell.GetDurableStreamCommand'
    }

    It 'takes the endpoint from $env:STREAM_URL so -BaseUri is optional' {
        @(Get-DurableStreamServer).Count | Should -Be 0
        $env:STREAM_URL = $script:serverUri
        $env:STREAM_AUTH = 'Bearer pester-secret'
        $name = New-StreamName
        $stream = New-DurableStream $name -ContentType text/plain
        $stream.Uri.ToString() | Should -Be "$script:serverUri/v1/stream/$name"
        Write-DurableStream $name 'positional value'
        Read-DurableStream $name | Should -Be 'positional value'
        (Get-DurableStream $name).NextOffset | Should -Not -Be '0000000000000000_0000000000000000'
    }

    It 'defaults to http://localhost:4437 like the tool when nothing names a server' {
        @(Get-DurableStreamServer).Count | Should -Be 0
        Show-DurableStream nothing-here -NoBrowser | ForEach-Object ToString | Should -BeLike 'http://localhost:4437/*nothing-here*'
    }
}

Describe 'Stream names first' -Tag 'Integration' {
    BeforeAll {
        $script:savedAuth = $env:STREAM_AUTH
        $env:STREAM_AUTH = 'Bearer pester-secret'
    }
    AfterAll { $env:STREAM_AUTH = $script:savedAuth }

    It 'takes the stream name as the first positional argument of every stream cmdlet' {
        $name = New-StreamName
        New-DurableStream $name -BaseUri $script:serverUri -ContentType text/plain | Should -Not -BeNullOrEmpty
        Get-DurableStream $name -BaseUri $script:serverUri | ForEach-Object Name | Should -Be $name
        Write-DurableStream $name 'one' -BaseUri $script:serverUri
        Read-DurableStream $name -BaseUri $script:serverUri | Should -Be 'one'
        Show-DurableStream $name -BaseUri $script:serverUri -NoBrowser | Should -Not -BeNullOrEmpty
        Close-DurableStream $name -BaseUri $script:serverUri
        Remove-DurableStream $name -BaseUri $script:serverUri -Confirm:$false
        Get-DurableStream $name -BaseUri $script:serverUri -ErrorAction SilentlyContinue -ErrorVariable failure
        Assert-ErrorId $failure 'StreamNotFound' 'ObjectNotFound'
    }

    It 'still accepts a full stream URI as the first positional argument' {
        $name = New-StreamName
        $uri = "$script:serverUri/v1/stream/$name"
        (New-DurableStream $uri -ContentType text/plain).Name | Should -Be $name
        Write-DurableStream $uri 'two'
        Read-DurableStream ([uri]$uri) | Should -Be 'two'
        (Get-DurableStream $uri).Uri.ToString() | Should -Be $uri
    }
}
