using System.Globalization;
using System.Management.Automation;

namespace DurableStreams.PowerShell;

/// <summary>
/// Accepts a duration the way the <c>durable-streams</c> tool does: a whole number with an optional unit
/// (<c>500ms</c>, <c>30s</c>, <c>2m</c>, <c>1h</c>, <c>7d</c>; a plain number means seconds), or a <see cref="TimeSpan"/>
/// (including the <c>hh:mm:ss</c> text form). A plain number is never taken as ticks.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class DurationTransformationAttribute : ArgumentTransformationAttribute
{
    /// <summary>The accepted forms, for messages.</summary>
    public const string ExpectedFormat = "a whole number with an optional unit ms, s, m, h or d (for example 500ms, 30s, 2m, 1h, 7d; no unit means seconds), or a TimeSpan";

    /// <inheritdoc/>
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        var value = inputData is PSObject pso ? pso.BaseObject : inputData;
        var duration = value switch
        {
            TimeSpan span => span,
            // PowerShell reads an unquoted 7d as the decimal literal 7: taking it as seconds would turn "7 days" into 7 s.
            decimal => throw new ArgumentTransformationMetadataException(
                $"'{value}' is a decimal number (PowerShell reads an unquoted 7d as the number 7); quote a duration with a unit, for example '7d' or '12h'."),
            int or long or short or byte or uint or ulong or ushort or sbyte => TimeSpan.FromSeconds(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            double or float => TimeSpan.FromSeconds(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            string text when TryParse(text, out var parsed) => parsed,
            _ => throw new ArgumentTransformationMetadataException($"'{value}' is not a duration: expected {ExpectedFormat}."),
        };
        if (duration <= TimeSpan.Zero)
        {
            throw new ArgumentTransformationMetadataException($"'{value}' is not a positive duration.");
        }
        return duration;
    }

    internal static bool TryParse(string text, out TimeSpan duration)
    {
        duration = default;
        var span = text.AsSpan().Trim();
        var digits = 0;
        while (digits < span.Length && char.IsAsciiDigit(span[digits]))
        {
            digits++;
        }
        if (digits > 0)
        {
            var unit = span[digits..];
            long? ticksPerUnit = unit switch
            {
                "" or "s" or "S" => TimeSpan.TicksPerSecond,
                "ms" or "MS" or "Ms" or "mS" => TimeSpan.TicksPerMillisecond,
                "m" or "M" => TimeSpan.TicksPerMinute,
                "h" or "H" => TimeSpan.TicksPerHour,
                "d" or "D" => TimeSpan.TicksPerDay,
                _ => null,
            };
            if (ticksPerUnit is { } perUnit
                && long.TryParse(span[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out var count)
                && count <= TimeSpan.MaxValue.Ticks / perUnit)
            {
                duration = TimeSpan.FromTicks(count * perUnit);
                return true;
            }
        }
        return TimeSpan.TryParse(span, CultureInfo.InvariantCulture, out duration);
    }
}
