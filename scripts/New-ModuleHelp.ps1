<#
.SYNOPSIS
    Generates the module's MAML help file from the per-cmdlet markdown in module/help.

.DESCRIPTION
    Imports the built module (so every parameter's type, position, pipeline binding and parameter sets come from the
    cmdlets themselves), reads module/help/<Cmdlet>.md for the words (SYNOPSIS, DESCRIPTION, EXAMPLES, PARAMETERS,
    INPUTS, OUTPUTS, NOTES) and writes <OutputPath>, the DurableStreams.PowerShell.dll-Help.xml that Get-Help reads.
    It fails when an exported cmdlet has no markdown, when a section or example is missing, when a parameter has no
    description, or when the markdown describes a parameter the cmdlet does not have. build.ps1 runs it in a child
    pwsh (a binary module cannot be unloaded).

    Markdown layout: '# <Cmdlet>', then '## SYNOPSIS', '## DESCRIPTION', '## EXAMPLES' with '### <title>' entries
    (a ```powershell fence, then remarks), '## PARAMETERS' with '### -<Name>' entries, and optionally '## INPUTS',
    '## OUTPUTS' (with '### <type name>' entries) and '## NOTES', then '## RELATED LINKS' (required): one '- <text>' line per
    link, either a cmdlet or help topic name (Read-DurableStream, about_DurableStreams) or '[text](https://...)'.
    Each about_<Topic>.md beside them is copied as the help topic en-US/about_<Topic>.help.txt (Get-Help about_<Topic>).

.PARAMETER ModulePath
    The built module folder (holding DurableStreams.psd1).

.PARAMETER SourcePath
    The folder of the markdown files (module/help).

.PARAMETER OutputPath
    The MAML file to write.

.EXAMPLE
    dotnet pwsh -NoProfile -File scripts/New-ModuleHelp.ps1 -ModulePath artifacts/module/DurableStreams -SourcePath module/help -OutputPath artifacts/module/DurableStreams/en-US/DurableStreams.PowerShell.dll-Help.xml
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$ModulePath,
    [Parameter(Mandatory)][string]$SourcePath,
    [Parameter(Mandatory)][string]$OutputPath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

$module = Import-Module (Join-Path $ModulePath 'DurableStreams.psd1') -PassThru -Force
$common = [System.Management.Automation.Cmdlet]::CommonParameters
$problems = [System.Collections.Generic.List[string]]::new()

function Read-HelpMarkdown {
    param([string]$Path)
    $sections = [ordered]@{}
    $section = $null
    $entry = $null
    $inFence = $false
    foreach ($line in Get-Content -LiteralPath $Path) {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line -match '^## (.+)$') {
            $section = $Matches[1].Trim()
            $sections[$section] = [pscustomobject]@{ Text = [System.Collections.Generic.List[string]]::new(); Entries = [ordered]@{} }
            $entry = $null
            continue
        }
        if (-not $inFence -and $line -match '^### (.+)$' -and $null -ne $section) {
            $entry = $Matches[1].Trim()
            $sections[$section].Entries[$entry] = [System.Collections.Generic.List[string]]::new()
            continue
        }
        if ($null -eq $section) { continue }
        if ($null -ne $entry) { $sections[$section].Entries[$entry].Add($line) } else { $sections[$section].Text.Add($line) }
    }
    $sections
}

function Split-Paragraphs {
    param([string[]]$Lines)
    $text = ($Lines -join "`n").Trim()
    if (-not $text) { return @() }
    @($text -split "`n\s*`n" | ForEach-Object { ($_ -split "`n" | ForEach-Object Trim) -join ' ' })
}

function Write-Paragraphs {
    param([System.Xml.XmlWriter]$Writer, [string[]]$Paragraphs)
    $Writer.WriteStartElement('maml', 'description', $maml)
    foreach ($p in $Paragraphs) { $Writer.WriteElementString('maml', 'para', $maml, $p) }
    $Writer.WriteEndElement()
}

function Get-PipelineInput {
    param($Attribute)
    $kinds = @()
    if ($Attribute.ValueFromPipeline) { $kinds += 'ByValue' }
    if ($Attribute.ValueFromPipelineByPropertyName) { $kinds += 'ByPropertyName' }
    if ($kinds) { "True ($($kinds -join ', '))" } else { 'False' }
}

function Write-Parameter {
    param([System.Xml.XmlWriter]$Writer, $Parameter, $SetParameter, [string[]]$Description, [switch]$WithDefault)
    $isSwitch = $Parameter.ParameterType -eq [System.Management.Automation.SwitchParameter]
    $Writer.WriteStartElement('command', 'parameter', $command)
    $Writer.WriteAttributeString('required', ([string]$SetParameter.IsMandatory).ToLowerInvariant())
    $Writer.WriteAttributeString('variableLength', ([string]$Parameter.ParameterType.IsArray).ToLowerInvariant())
    $Writer.WriteAttributeString('globbing', 'false')
    $Writer.WriteAttributeString('pipelineInput', (Get-PipelineInput $SetParameter))
    $Writer.WriteAttributeString('position', $(if ($SetParameter.Position -ge 0) { [string]$SetParameter.Position } else { 'named' }))
    $Writer.WriteAttributeString('aliases', $(if ($Parameter.Aliases.Count) { $Parameter.Aliases -join ', ' } else { 'none' }))
    $Writer.WriteElementString('maml', 'name', $maml, $Parameter.Name)
    Write-Paragraphs $Writer $Description
    $typeName = $Parameter.ParameterType.Name
    $underlying = [Nullable]::GetUnderlyingType($Parameter.ParameterType)
    if ($underlying) { $typeName = $underlying.Name }
    if (-not $isSwitch -or $WithDefault) {
        $Writer.WriteStartElement('command', 'parameterValue', $command)
        $Writer.WriteAttributeString('required', ([string](-not $isSwitch)).ToLowerInvariant())
        $Writer.WriteAttributeString('variableLength', 'false')
        $Writer.WriteString($typeName)
        $Writer.WriteEndElement()
    }
    $enumType = if ($underlying) { $underlying } else { $Parameter.ParameterType }
    if ($enumType.IsEnum) {
        $Writer.WriteStartElement('command', 'parameterValueGroup', $command)
        foreach ($value in [Enum]::GetNames($enumType)) {
            $Writer.WriteStartElement('command', 'parameterValue', $command)
            $Writer.WriteAttributeString('required', 'false')
            $Writer.WriteAttributeString('variableLength', 'false')
            $Writer.WriteString($value)
            $Writer.WriteEndElement()
        }
        $Writer.WriteEndElement()
    }
    $Writer.WriteStartElement('dev', 'type', $dev)
    $Writer.WriteElementString('maml', 'name', $maml, $Parameter.ParameterType.FullName)
    $Writer.WriteEndElement()
    if ($WithDefault) { $Writer.WriteElementString('dev', 'defaultValue', $dev, 'None') }
    $Writer.WriteEndElement()
}

$maml = 'http://schemas.microsoft.com/maml/2004/10'
$command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$dev = 'http://schemas.microsoft.com/maml/dev/2004/10'

$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
New-Item -ItemType Directory -Force -Path (Split-Path -Parent $OutputPath) | Out-Null
$writer = [System.Xml.XmlWriter]::Create($OutputPath, $settings)
try {
    $writer.WriteStartDocument()
    $writer.WriteStartElement('helpItems', 'http://msh')
    $writer.WriteAttributeString('schema', 'maml')
    foreach ($cmdlet in $module.ExportedCmdlets.Values | Sort-Object Name) {
        $file = Join-Path $SourcePath "$($cmdlet.Name).md"
        if (-not (Test-Path -LiteralPath $file)) { $problems.Add("$($cmdlet.Name): no help source $file"); continue }
        $doc = Read-HelpMarkdown $file
        foreach ($required in 'SYNOPSIS', 'DESCRIPTION', 'EXAMPLES') {
            if (-not $doc.Contains($required) -or (-not ($doc[$required].Text -join '').Trim() -and $doc[$required].Entries.Count -eq 0)) {
                $problems.Add("$($cmdlet.Name): the $required section is missing or empty")
            }
        }
        $parameterDocs = if ($doc.Contains('PARAMETERS')) { $doc['PARAMETERS'].Entries } else { [ordered]@{} }
        $ownParameters = @($cmdlet.Parameters.Values | Where-Object { $_.Name -notin $common } | Sort-Object Name)
        $descriptions = @{}
        foreach ($parameter in $ownParameters) {
            $text = $parameterDocs["-$($parameter.Name)"]
            $paragraphs = @(if ($text) { Split-Paragraphs $text })
            if ($paragraphs.Count -eq 0) { $problems.Add("$($cmdlet.Name): parameter -$($parameter.Name) has no description") }
            $descriptions[$parameter.Name] = $paragraphs
        }
        foreach ($documented in $parameterDocs.Keys) {
            if ($documented.TrimStart('-') -notin $ownParameters.Name) { $problems.Add("$($cmdlet.Name): the help describes $documented, which the cmdlet does not have") }
        }

        $writer.WriteStartElement('command', 'command', $command)
        $writer.WriteAttributeString('xmlns', 'maml', $null, $maml)
        $writer.WriteAttributeString('xmlns', 'dev', $null, $dev)
        $writer.WriteStartElement('command', 'details', $command)
        $writer.WriteElementString('command', 'name', $command, $cmdlet.Name)
        $writer.WriteElementString('command', 'verb', $command, $cmdlet.Verb)
        $writer.WriteElementString('command', 'noun', $command, $cmdlet.Noun)
        Write-Paragraphs $writer (Split-Paragraphs $doc['SYNOPSIS'].Text)
        $writer.WriteEndElement()
        Write-Paragraphs $writer (Split-Paragraphs $doc['DESCRIPTION'].Text)

        $writer.WriteStartElement('command', 'syntax', $command)
        foreach ($set in $cmdlet.ParameterSets) {
            $writer.WriteStartElement('command', 'syntaxItem', $command)
            $writer.WriteElementString('maml', 'name', $maml, $cmdlet.Name)
            foreach ($setParameter in $set.Parameters | Where-Object { $_.Name -notin $common } | Sort-Object @{ E = { if ($_.Position -ge 0) { $_.Position } else { 1000 } } }, Name) {
                $parameter = $cmdlet.Parameters[$setParameter.Name]
                $attribute = $parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] -and ($_.ParameterSetName -eq $set.Name -or $_.ParameterSetName -eq '__AllParameterSets') } | Select-Object -First 1
                Write-Parameter $writer $parameter ([pscustomobject]@{
                        IsMandatory = $setParameter.IsMandatory; Position = $setParameter.Position
                        ValueFromPipeline = $attribute.ValueFromPipeline; ValueFromPipelineByPropertyName = $attribute.ValueFromPipelineByPropertyName
                    }) $descriptions[$parameter.Name]
            }
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()

        $writer.WriteStartElement('command', 'parameters', $command)
        foreach ($parameter in $ownParameters) {
            $attributes = @($parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] })
            $position = ($attributes | ForEach-Object Position | Measure-Object -Maximum).Maximum
            Write-Parameter $writer $parameter ([pscustomobject]@{
                    IsMandatory = [bool]($attributes | Where-Object Mandatory); Position = $position
                    ValueFromPipeline = [bool]($attributes | Where-Object ValueFromPipeline)
                    ValueFromPipelineByPropertyName = [bool]($attributes | Where-Object ValueFromPipelineByPropertyName)
                }) $descriptions[$parameter.Name] -WithDefault
        }
        $writer.WriteEndElement()

        foreach ($kind in @(@{ Section = 'INPUTS'; List = 'inputTypes'; Item = 'inputType' }, @{ Section = 'OUTPUTS'; List = 'returnValues'; Item = 'returnValue' })) {
            if (-not $doc.Contains($kind.Section)) { continue }
            $writer.WriteStartElement('command', $kind.List, $command)
            foreach ($typeName in $doc[$kind.Section].Entries.Keys) {
                $writer.WriteStartElement('command', $kind.Item, $command)
                $writer.WriteStartElement('dev', 'type', $dev)
                $writer.WriteElementString('maml', 'name', $maml, $typeName)
                $writer.WriteEndElement()
                Write-Paragraphs $writer (Split-Paragraphs $doc[$kind.Section].Entries[$typeName])
                $writer.WriteEndElement()
            }
            $writer.WriteEndElement()
        }

        if ($doc.Contains('NOTES')) {
            $writer.WriteStartElement('maml', 'alertSet', $maml)
            $writer.WriteStartElement('maml', 'alert', $maml)
            foreach ($p in Split-Paragraphs $doc['NOTES'].Text) { $writer.WriteElementString('maml', 'para', $maml, $p) }
            $writer.WriteEndElement()
            $writer.WriteEndElement()
        }

        $writer.WriteStartElement('command', 'examples', $command)
        if ($doc.Contains('EXAMPLES') -and $doc['EXAMPLES'].Entries.Count -eq 0) { $problems.Add("$($cmdlet.Name): no example") }
        foreach ($title in $doc['EXAMPLES'].Entries.Keys) {
            $lines = @($doc['EXAMPLES'].Entries[$title])
            $start = [Array]::FindIndex($lines, [Predicate[string]] { param($l) $l -match '^```' })
            $end = if ($start -ge 0) { [Array]::FindIndex($lines, $start + 1, [Predicate[string]] { param($l) $l -match '^```' }) } else { -1 }
            if ($start -lt 0 -or $end -lt 0) { $problems.Add("$($cmdlet.Name): example '$title' has no code fence"); continue }
            $writer.WriteStartElement('command', 'example', $command)
            $writer.WriteElementString('maml', 'title', $maml, "-------------------------- $title --------------------------")
            $writer.WriteElementString('dev', 'code', $dev, ($lines[($start + 1)..($end - 1)] -join "`n"))
            $writer.WriteStartElement('dev', 'remarks', $dev)
            $remarks = @(if ($end + 1 -lt $lines.Count) { Split-Paragraphs $lines[($end + 1)..($lines.Count - 1)] })
            foreach ($p in $remarks) { $writer.WriteElementString('maml', 'para', $maml, $p) }
            $writer.WriteEndElement()
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()

        $links = @(if ($doc.Contains('RELATED LINKS')) { $doc['RELATED LINKS'].Text | Where-Object { $_ -match '^\s*-\s+\S' } })
        if ($links.Count -eq 0) { $problems.Add("$($cmdlet.Name): the RELATED LINKS section is missing or empty") }
        $writer.WriteStartElement('command', 'relatedLinks', $command)
        foreach ($link in $links) {
            $item = ($link -replace '^\s*-\s+', '').Trim()
            $text = $item; $uri = ''
            if ($item -match '^\[(?<text>[^\]]+)\]\((?<uri>[^)]+)\)$') { $text = $Matches.text; $uri = $Matches.uri }
            $writer.WriteStartElement('maml', 'navigationLink', $maml)
            $writer.WriteElementString('maml', 'linkText', $maml, $text)
            $writer.WriteElementString('maml', 'uri', $maml, $uri)
            $writer.WriteEndElement()
        }
        $writer.WriteEndElement()
        $writer.WriteEndElement()
    }
    $writer.WriteEndElement()
    $writer.WriteEndDocument()
}
finally {
    $writer.Dispose()
}

if ($problems.Count -gt 0) {
    Remove-Item -LiteralPath $OutputPath -ErrorAction SilentlyContinue
    throw "The module help is incomplete:`n  $($problems -join "`n  ")"
}
$topics = @(Get-ChildItem -LiteralPath $SourcePath -Filter 'about_*.md')
foreach ($topic in $topics) {
    Copy-Item -LiteralPath $topic.FullName -Destination (Join-Path (Split-Path -Parent $OutputPath) ($topic.BaseName + '.help.txt'))
}
Write-Host "Help: $OutputPath ($($module.ExportedCmdlets.Count) cmdlets, $($topics.Count) about topics)"
