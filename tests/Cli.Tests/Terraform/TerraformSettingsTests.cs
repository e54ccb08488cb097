using System.Reflection;
using System.Runtime.Loader;
using System.Text.RegularExpressions;
using Geo.Testing.Services;

namespace Geo.Cli.Tests.Terraform;

/// <summary>
/// Every configuration name the terraform modules give the services (environment variables and secret-to-environment
/// mappings, <c>Geo__…</c> / <c>Replicator__…</c> / <c>Directory__…</c>) must be a key some options class of the four
/// services binds. The bindable keys come from reflection over the built service assemblies (every type with a
/// <c>SectionName</c> constant, plus the <c>Setting</c> constants of keys read directly), not from a list kept here.
/// </summary>
public sealed partial class TerraformSettingsTests
{
    private static readonly string[] Services = ["EdgeRouter", "RegionService", "ShardDirectory", "Replicator"];

    [Fact]
    public void Every_service_setting_terraform_injects_is_a_key_an_options_class_binds()
    {
        var bindable = BindableKeys();
        var sections = bindable.Select(k => k[0]).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var names = TerraformNames();
        Assert.NotEmpty(names);

        var unbound = names
            .Where(n => sections.Contains(n.Name.Split("__")[0]))
            .Where(n => !bindable.Any(pattern => Matches(pattern, n.Name.Split("__"))))
            .Select(n => $"{n.Name} ({n.File})")
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToList();

        Assert.True(unbound.Count == 0,
            "terraform sets configuration names no options class of the services binds:\n  "
            + string.Join("\n  ", unbound)
            + "\nbindable keys (':' is '__' in environment variables; # = list index, * = dictionary key):\n  "
            + string.Join("\n  ", bindable.Select(k => string.Join(':', k)).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public void The_bindable_keys_include_the_ones_the_deployment_needs()
    {
        // Sanity of the reflection itself: if it found nothing, the test above would pass vacuously.
        var bindable = BindableKeys();
        foreach (var key in new[] { "Geo:Region", "Geo:Topology", "Geo:Tls:Certificate", "Geo:Auth:Issuers:0:Authority", "Geo:Logging:UserHashKey" })
        {
            Assert.Contains(bindable, pattern => Matches(pattern, key.Split(':')));
        }
        Assert.DoesNotContain(bindable, pattern => Matches(pattern, ["Geo", "PeerToken"]));
        Assert.DoesNotContain(bindable, pattern => Matches(pattern, ["Geo", "Auth", "Issuers"])); // a list, not a value
        Assert.Contains(bindable, pattern => Matches(pattern, ["Geo", "Auth", "Issuers", "${i}", "Issuer"]));
    }

    /// <summary>Names that look like .NET configuration keys in environment form, with the file they occur in.</summary>
    private static List<(string Name, string File)> TerraformNames()
    {
        var root = Path.Combine(ServiceProcess.RepositoryRoot(), "terraform");
        var found = new List<(string, string)>();
        foreach (var file in Directory.EnumerateFiles(root, "*.tf", SearchOption.AllDirectories))
        {
            if (file.Contains($"{Path.DirectorySeparatorChar}.terraform{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            {
                continue;
            }
            var relative = Path.GetRelativePath(root, file);
            foreach (var raw in File.ReadLines(file))
            {
                var line = Comment().Replace(raw, string.Empty);
                foreach (Match m in EnvironmentName().Matches(line))
                {
                    found.Add((m.Value, relative));
                }
            }
        }
        return found;
    }

    private static bool Matches(string[] pattern, string[] key)
    {
        if (pattern.Length != key.Length)
        {
            return false;
        }
        for (var i = 0; i < key.Length; i++)
        {
            var ok = key[i].StartsWith("${", StringComparison.Ordinal) ? pattern[i] is "#" or "*" : pattern[i] switch
            {
                "*" => key[i].Length > 0,
                "#" => key[i].Length > 0 && key[i].All(char.IsAsciiDigit),
                var p => string.Equals(p, key[i], StringComparison.OrdinalIgnoreCase),
            };
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Every key the services' options classes bind, as segments; '#' stands for a list index, '*' for a dictionary key.</summary>
    private static List<string[]> BindableKeys()
    {
        var keys = new List<string[]>();
        foreach (var service in Services)
        {
            var main = ServiceAssemblyPath(service);
            var context = new ServiceLoadContext(main);
            var directory = Path.GetDirectoryName(main)!;
            foreach (var dll in Directory.EnumerateFiles(directory, "Geo.*.dll"))
            {
                var assembly = context.LoadFromAssemblyName(new AssemblyName(Path.GetFileNameWithoutExtension(dll)));
                foreach (var type in LoadableTypes(assembly))
                {
                    foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
                    {
                        if (!field.IsLiteral || field.FieldType != typeof(string) || field.GetRawConstantValue() is not string value)
                        {
                            continue;
                        }
                        if (field.Name == "SectionName")
                        {
                            Walk(type, value.Split(':'), keys, 0);
                        }
                        else if (field.Name == "Setting" && value.Contains(':', StringComparison.Ordinal))
                        {
                            keys.Add(value.Split(':')); // a key read directly (configuration[Setting])
                        }
                    }
                }
            }
        }
        return keys.DistinctBy(k => string.Join(':', k), StringComparer.OrdinalIgnoreCase).ToList();
    }

    private static void Walk(Type type, string[] prefix, List<string[]> keys, int depth)
    {
        if (depth > 8)
        {
            return;
        }
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0)
            {
                continue;
            }
            if (property.SetMethod is not { IsPublic: true })
            {
                continue; // only public settable properties are bound
            }
            AddValue(property.PropertyType, [.. prefix, property.Name], keys, depth);
        }
    }

    private static void AddValue(Type type, string[] key, List<string[]> keys, int depth)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsScalar(type))
        {
            keys.Add(key);
            return;
        }
        if (type.IsArray)
        {
            AddValue(type.GetElementType()!, [.. key, "#"], keys, depth + 1);
            return;
        }
        if (type.IsGenericType && DictionaryValue(type) is { } value)
        {
            AddValue(value, [.. key, "*"], keys, depth + 1);
            return;
        }
        if (type.IsGenericType && EnumerableElement(type) is { } element)
        {
            AddValue(element, [.. key, "#"], keys, depth + 1);
            return;
        }
        if (type.IsClass || (type.IsValueType && !type.IsPrimitive))
        {
            Walk(type, key, keys, depth + 1);
        }
    }

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type.FullName is "System.String" or "System.TimeSpan" or "System.Uri" or "System.Decimal"
            or "System.DateTime" or "System.DateTimeOffset" or "System.Guid" or "System.TimeOnly" or "System.DateOnly";

    private static Type? DictionaryValue(Type type) =>
        type.GetInterfaces().Append(type)
            .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition().FullName == typeof(IDictionary<,>).FullName)
            ?.GetGenericArguments()[1];

    private static Type? EnumerableElement(Type type) =>
        type.FullName?.StartsWith("System.String", StringComparison.Ordinal) == true ? null
            : type.GetInterfaces().Append(type)
                .FirstOrDefault(i => i.IsGenericType && i.GetGenericTypeDefinition().FullName == typeof(IEnumerable<>).FullName)
                ?.GetGenericArguments()[0];

    private static IEnumerable<Type> LoadableTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException ex)
        {
            return ex.Types.OfType<Type>();
        }
    }

    private static string ServiceAssemblyPath(string project)
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var path = Path.Combine(ServiceProcess.RepositoryRoot(), "src", project, "bin", configuration, "net10.0", $"Geo.{project}.dll");
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {project} first (dotnet build -c {configuration}); not found: {path}");
    }

    /// <summary>Loads a service's assemblies from its output folder, and ASP.NET Core from the shared framework.</summary>
    private sealed class ServiceLoadContext(string mainAssembly) : AssemblyLoadContext(isCollectible: true)
    {
        private readonly AssemblyDependencyResolver _resolver = new(mainAssembly);
        private readonly string _directory = Path.GetDirectoryName(mainAssembly)!;

        private static readonly string? AspNetCore = FindAspNetCore();

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            if (assemblyName.Name is null || Default.Assemblies.Any(a => a.GetName().Name == assemblyName.Name && !assemblyName.Name.StartsWith("Geo.", StringComparison.Ordinal)))
            {
                return null; // shared with the test process (the runtime, and whatever it already loaded)
            }
            var candidates = new[]
            {
                _resolver.ResolveAssemblyToPath(assemblyName),
                Path.Combine(_directory, assemblyName.Name + ".dll"),
                AspNetCore is null ? null : Path.Combine(AspNetCore, assemblyName.Name + ".dll"),
            };
            return candidates.FirstOrDefault(File.Exists) is { } path ? LoadFromAssemblyPath(path) : null;
        }

        private static string? FindAspNetCore()
        {
            var netCore = Path.GetDirectoryName(typeof(object).Assembly.Location)!; // …/shared/Microsoft.NETCore.App/<version>
            var shared = Path.GetDirectoryName(Path.GetDirectoryName(netCore))!;
            var aspNet = Path.Combine(shared, "Microsoft.AspNetCore.App");
            if (!Directory.Exists(aspNet))
            {
                return null;
            }
            var same = Path.Combine(aspNet, Path.GetFileName(netCore));
            return Directory.Exists(same) ? same : Directory.GetDirectories(aspNet).Order(StringComparer.Ordinal).LastOrDefault();
        }
    }

    [GeneratedRegex(@"(^|\s)(#|//).*$")]
    private static partial Regex Comment();

    // Geo__Tls__Certificate, Replicator__PeerAddresses__eu-west, "Geo__Auth__Issuers__${i}__Issuer" (keys or string
    // literals; an interpolated segment stands for a list index or dictionary key).
    [GeneratedRegex(@"(?<![A-Za-z0-9_.-])[A-Za-z][A-Za-z0-9]*(?:__(?:[A-Za-z0-9][A-Za-z0-9-]*|\$\{[^}]+\}))+")]
    private static partial Regex EnvironmentName();
}
