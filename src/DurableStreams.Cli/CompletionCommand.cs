using System.CommandLine;

namespace DurableStreams.Cli;

/// <summary>
/// The <c>completion bash|zsh|pwsh</c> command: prints the shell code that registers tab completion for
/// <c>durable-streams</c>. Each snippet calls the tool's <c>[suggest:&lt;position&gt;]</c> directive with the line typed
/// so far and keeps the suggestions that start with the word under the cursor.
/// </summary>
internal sealed class CompletionCommand
{
    /// <summary>bash: a function for <c>complete -F</c>; <c>COMP_LINE</c>/<c>COMP_POINT</c> give the line and cursor.</summary>
    internal const string Bash = """
        # durable-streams tab completion (bash). Load it with: source <(durable-streams completion bash)
        _durable_streams_complete() {
            local IFS=$'\n'
            local suggestions
            suggestions=$(durable-streams "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)
            COMPREPLY=($(compgen -W "${suggestions}" -- "${COMP_WORDS[COMP_CWORD]}"))
        }
        complete -o default -F _durable_streams_complete durable-streams

        """;

    /// <summary>zsh: the bash function through zsh's bash-completion emulation (after <c>compinit</c>).</summary>
    internal const string Zsh = """
        # durable-streams tab completion (zsh, after compinit). Load it with: source <(durable-streams completion zsh)
        autoload -U +X bashcompinit && bashcompinit
        _durable_streams_complete() {
            local IFS=$'\n'
            local suggestions
            suggestions=$(durable-streams "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)
            COMPREPLY=($(compgen -W "${suggestions}" -- "${COMP_WORDS[COMP_CWORD]}"))
        }
        complete -o default -F _durable_streams_complete durable-streams

        """;

    /// <summary>PowerShell: a native argument completer; the line is padded when the cursor sits after trailing spaces.</summary>
    internal const string PowerShell = """
        # durable-streams tab completion (PowerShell 7). Load it with: durable-streams completion pwsh | Out-String | Invoke-Expression
        Register-ArgumentCompleter -Native -CommandName durable-streams -ScriptBlock {
            param($wordToComplete, $commandAst, $cursorPosition)
            $position = $cursorPosition - $commandAst.Extent.StartOffset
            $line = $commandAst.ToString().PadRight($position)
            durable-streams "[suggest:$position]" $line 2>$null |
                Where-Object { $_ -like "$wordToComplete*" } |
                ForEach-Object { [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_) }
        }

        """;

    private static readonly (string Name, string Snippet)[] s_shells = [("bash", Bash), ("zsh", Zsh), ("pwsh", PowerShell), ("powershell", PowerShell)];

    private readonly Argument<string> _shell = new("shell")
    {
        Description = "The shell: bash, zsh or pwsh (powershell).",
    };

    public CompletionCommand()
    {
        _shell.AcceptOnlyFromAmong([.. s_shells.Select(s => s.Name)]);
        Command = new Command("completion", "Print the shell code that registers tab completion (commands, options, values, and stream names from the server's registry).")
        {
            _shell,
        };
        Command.SetAction(async (parseResult, cancellationToken) =>
        {
            var shell = parseResult.GetRequiredValue(_shell);
            await parseResult.InvocationConfiguration.Output.WriteAsync(
                s_shells.First(s => s.Name == shell).Snippet.ReplaceLineEndings("\n").AsMemory(), cancellationToken);
            return ExitCodes.Success;
        });
    }

    public Command Command { get; }
}
