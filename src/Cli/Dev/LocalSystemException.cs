namespace Geo.Cli.Dev;

/// <summary>The local system cannot go on (a server did not start, a service exited); printed as <c>geo: message</c>, exit 1.</summary>
internal sealed class LocalSystemException : Exception
{
    public LocalSystemException()
    {
    }

    public LocalSystemException(string message)
        : base(message)
    {
    }

    public LocalSystemException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
