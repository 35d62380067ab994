using System.Globalization;
using DurableStreams.Bench;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    await Console.Error.WriteLineAsync(BenchOptions.Usage);
    return 2;
}

if (options.ShowHelp)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

return await BenchRunner.RunAsync(options);
