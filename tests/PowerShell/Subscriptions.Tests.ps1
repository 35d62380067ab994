#Requires -Version 7.6
# Subscriptions on a server started inside pwsh: on by default as with `serve`, kept in the data directory across a
# restart, off with -NoSubscriptions, and local webhooks only with -AllowLocalWebhooks.

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
}

Describe 'Subscriptions on an in-process server' -Tag 'Integration' {
    It 'serves the control API by default and keeps subscriptions and the signing key across a restart of the file store' {
        $dataPath = Join-Path $TestDrive 'subs-data'
        $server = Start-DurableStreamServer -Port 0 -DataPath $dataPath
        try {
            $body = '{"type":"pull-wake","streams":["work/1"],"wake_stream":"wake/q"}'
            $created = Invoke-WebRequest -Uri "$($server.BaseUri)__ds/subscriptions/q" -Method Put -Body $body -ContentType 'application/json' -SkipHttpErrorCheck
            $created.StatusCode | Should -Be 201
            $kid = (Invoke-RestMethod -Uri "$($server.BaseUri)__ds/jwks.json").keys[0].kid
            $kid | Should -Match '^ds_'
        }
        finally {
            $server | Stop-DurableStreamServer
        }

        $again = Start-DurableStreamServer -Port 0 -DataPath $dataPath
        try {
            (Invoke-RestMethod -Uri "$($again.BaseUri)__ds/subscriptions/q").id | Should -Be 'q'
            (Invoke-RestMethod -Uri "$($again.BaseUri)__ds/jwks.json").keys.kid | Should -Contain $kid
        }
        finally {
            $again | Stop-DurableStreamServer
        }
    }

    It 'refuses http://127.0.0.1 webhooks unless -AllowLocalWebhooks is given' {
        $body = '{"type":"webhook","streams":["work/1"],"webhook":{"url":"http://127.0.0.1:9/hook"}}'
        $server = Start-DurableStreamServer -Port 0 -InMemory
        try {
            $refused = Invoke-WebRequest -Uri "$($server.BaseUri)__ds/subscriptions/local" -Method Put -Body $body -ContentType 'application/json' -SkipHttpErrorCheck
            $refused.StatusCode | Should -Be 400
        }
        finally {
            $server | Stop-DurableStreamServer
        }
        $allowed = Start-DurableStreamServer -Port 0 -InMemory -AllowLocalWebhooks
        try {
            $created = Invoke-WebRequest -Uri "$($allowed.BaseUri)__ds/subscriptions/local" -Method Put -Body $body -ContentType 'application/json' -SkipHttpErrorCheck
            $created.StatusCode | Should -Be 201
        }
        finally {
            $allowed | Stop-DurableStreamServer
        }
    }

    It 'answers 404 on the reserved prefix with -NoSubscriptions' {
        $server = Start-DurableStreamServer -Port 0 -InMemory -NoSubscriptions
        try {
            $response = Invoke-WebRequest -Uri "$($server.BaseUri)__ds/jwks.json" -SkipHttpErrorCheck
            $response.StatusCode | Should -Be 404
        }
        finally {
            $server | Stop-DurableStreamServer
        }
    }
}
