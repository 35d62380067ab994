#Requires -Version 7.6
# The built module folder: manifest, exports, format views, help completeness, notices.

BeforeDiscovery {
    $modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $modulePath 'DurableStreams.psd1') -Force
    $cmdlets = @(Get-Command -Module DurableStreams | ForEach-Object { @{ Name = $_.Name } })
}

BeforeAll {
    $script:modulePath = if ($env:DURABLESTREAMS_MODULE_PATH) { $env:DURABLESTREAMS_MODULE_PATH } else { Join-Path $PSScriptRoot '..' '..' 'artifacts' 'module' 'DurableStreams' }
    Import-Module (Join-Path $script:modulePath 'DurableStreams.psd1') -Force
    $script:manifest = Import-PowerShellDataFile (Join-Path $script:modulePath 'DurableStreams.psd1')
}

Describe 'The DurableStreams module manifest' -Tag 'Unit' {
    It 'exports an explicit list of cmdlets and nothing else' {
        $script:manifest.CmdletsToExport | Should -Not -Match '\*'
        $script:manifest.FunctionsToExport | Should -BeNullOrEmpty
        $script:manifest.AliasesToExport | Should -BeNullOrEmpty
        $script:manifest.VariablesToExport | Should -BeNullOrEmpty
        (Get-Command -Module DurableStreams).Name | Sort-Object | Should -Be ($script:manifest.CmdletsToExport | Sort-Object)
        (Get-Command -Module DurableStreams).CommandType | Sort-Object -Unique | Should -Be 'Cmdlet'
    }

    It 'exports the twelve cmdlets of the issues' {
        $script:manifest.CmdletsToExport | Sort-Object | Should -Be @(
            'Close-DurableStream', 'Compress-DurableStream', 'Get-DurableStream', 'Get-DurableStreamServer', 'New-DurableStream', 'Read-DurableStream',
            'Remove-DurableStream', 'Show-DurableStream', 'Start-DurableStreamServer', 'Stop-DurableStreamServer', 'Wait-DurableStream', 'Write-DurableStream')
    }

    It 'uses approved verbs only' {
        $approved = (Get-Verb).Verb
        foreach ($command in Get-Command -Module DurableStreams) {
            $command.Verb | Should -BeIn $approved
        }
    }

    It 'requires PowerShell 7.6 on Core and carries the repository version' {
        $script:manifest.PowerShellVersion | Should -Be '7.6'
        $script:manifest.CompatiblePSEditions | Should -Be 'Core'
        $script:manifest.RootModule | Should -Be 'DurableStreams.PowerShell.dll'
        $props = [xml](Get-Content -Raw (Join-Path $PSScriptRoot '..' '..' 'Directory.Build.props'))
        $version = @($props.Project.PropertyGroup | Where-Object { $_['Version'] } | ForEach-Object { $_['Version'].InnerText })[0]
        $script:manifest.ModuleVersion | Should -Be $version
        (Get-Module DurableStreams).Version | Should -Be ([version]$version)
    }

    It 'ships THIRD-PARTY-NOTICES.txt with the LMDB licence' {
        $notices = Join-Path $script:modulePath 'THIRD-PARTY-NOTICES.txt'
        $notices | Should -Exist
        $notices | Should -FileContentMatch 'The OpenLDAP Public License'
        $notices | Should -FileContentMatch 'LightningDB'
        $notices | Should -FileContentMatch 'System.CommandLine'
    }

    It 'has a table and a list view for <_>' -ForEach 'DurableStreams.PowerShell.DurableStreamServerInfo', 'DurableStreams.PowerShell.DurableStreamInfo' {
        $controls = (Get-FormatData -TypeName $_).FormatViewDefinition.Control | ForEach-Object { $_.GetType().Name }
        $controls | Should -Contain 'TableControl'
        $controls | Should -Contain 'ListControl'
    }
}

Describe 'Help for <Name>' -ForEach $cmdlets -Tag 'Unit' {
    BeforeAll {
        $script:help = Get-Help $Name -Full
        $script:command = Get-Command $Name
        $common = [System.Management.Automation.Cmdlet]::CommonParameters
        $script:parameters = @($script:command.Parameters.Keys | Where-Object { $_ -notin $common })
    }

    It 'has a synopsis' {
        $script:help.Synopsis | Should -Not -BeNullOrEmpty
        # Without help, Get-Help makes the syntax line the synopsis.
        $script:help.Synopsis | Should -Not -BeLike "$Name *"
    }

    It 'has a description' {
        ($script:help.Description.Text -join '').Trim() | Should -Not -BeNullOrEmpty
    }

    It 'has at least one example with code' {
        @($script:help.Examples.Example).Count | Should -BeGreaterThan 0
        foreach ($example in $script:help.Examples.Example) {
            $example.Code | Should -Not -BeNullOrEmpty
        }
    }

    It 'describes every parameter' {
        foreach ($parameter in $script:parameters) {
            $parameterHelp = $script:help.Parameters.Parameter | Where-Object Name -EQ $parameter
            $parameterHelp | Should -Not -BeNullOrEmpty -Because "-$parameter must be in the help"
            ($parameterHelp.Description.Text -join '').Trim() | Should -Not -BeNullOrEmpty -Because "-$parameter needs a description"
        }
    }

    It 'has RELATED LINKS that name the about topic' {
        $links = @($script:help.relatedLinks.navigationLink.linkText)
        $links.Count | Should -BeGreaterThan 1
        $links | Should -Contain 'about_DurableStreams'
    }
}

Describe 'about_DurableStreams' -Tag 'Unit' {
    It 'is a help topic that explains names, tokens and jobs' {
        $topic = Get-Help about_DurableStreams | Out-String
        $topic | Should -Match 'SHORT DESCRIPTION'
        $topic | Should -Match 'STREAM_AUTH'
        $topic | Should -Match 'STREAM_URL'
        $topic | Should -Match 'Start-ThreadJob'
    }
}
