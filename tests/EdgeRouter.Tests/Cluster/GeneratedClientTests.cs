using System.Reflection;
using System.Runtime.Loader;
using Geo.Testing.Services;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using NJsonSchema.CodeGeneration.CSharp;
using NSwag;
using NSwag.CodeGeneration.CSharp;

namespace Geo.EdgeRouter.Tests.Cluster;

/// <summary>
/// The document tells the truth: a C# client generated from the served <c>/openapi/v1.json</c> by NSwag (a generator
/// nobody here wrote) compiles, and the walk-through written against it (Cluster/Generated/Walkthrough.cs, compiled with
/// the generated code at run time) passes against the real edge and regions. A wrong type, a missing status or header
/// in the document fails here: the generated client throws on statuses the document does not list and deserializes
/// bodies by the document's schemas.
/// </summary>
[Collection(EdgeClusterCollection.Name)]
public sealed class GeneratedClientTests(EdgeCluster cluster) : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync() => new(cluster.RestoreAsync());

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    [Fact]
    public async Task A_client_generated_by_nswag_from_the_served_document_compiles_and_passes_the_walk_through()
    {
        var json = await cluster.Client.GetStringAsync(new Uri("/openapi/v1.json", UriKind.Relative), Ct);
        var document = await OpenApiDocument.FromJsonAsync(json, Ct);
        var settings = new CSharpClientGeneratorSettings
        {
            ClassName = "GeoApi",
            UseBaseUrl = false,     // the HttpClient's BaseAddress: the harness's client of the edge
            WrapResponses = true,   // status and headers (ETag) beside the body
            GenerateExceptionClasses = true,
            CSharpGeneratorSettings = { Namespace = "Geo.Generated", JsonLibrary = CSharpJsonLibrary.SystemTextJson },
        };
        var generated = new CSharpClientGenerator(document, settings).GenerateFile();
        TestContext.Current.AddAttachment("GeoApi.g.cs", generated);

        var assembly = Compile(generated, Resource("Generated.Walkthrough.cs"));
        var run = assembly.GetType("Geo.Generated.Walkthrough", throwOnError: true)!.GetMethod("RunAsync", BindingFlags.Public | BindingFlags.Static)!;
        using var http = TestCredentials.CreateClient(cluster.Edge.BaseAddress, TimeSpan.FromSeconds(30));
        var steps = await (Task<IReadOnlyList<string>>)run.Invoke(null, [http, Ct])!;
        Assert.Equal(["create", "put", "get", "put-if-match", "412", "list", "counter", "delete", "gone"], steps);
    }

    private static Assembly Compile(params string[] sources)
    {
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create("Geo.Generated.Client",
            sources.Select((source, i) => CSharpSyntaxTree.ParseText(source, path: $"source{i}.cs", cancellationToken: Ct)),
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var result = compilation.Emit(image, cancellationToken: Ct);
        var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
        Assert.True(result.Success, "the generated client or the walk-through does not compile:\n" + string.Join('\n', errors.Take(20)));
        image.Position = 0;
        return new AssemblyLoadContext("generated-client", isCollectible: true).LoadFromStream(image);
    }

    private static string Resource(string name)
    {
        using var stream = typeof(GeneratedClientTests).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"no resource {name}");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
