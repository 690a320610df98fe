using DistTrain.Contracts;
using DistTrain.Data;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Operations;

namespace DistTrain.Training.Tests.Engine;

/// <summary>
/// No TorchSharp temporaries on a training or inference path. A <c>Scalar</c> or <c>Tensor</c> made by a conversion
/// operator inside a call (<c>ids.ne(SpecialTokens.Pad)</c>, <c>x * 0.5</c>, <c>masked_fill(mask, -1e9)</c>) is
/// referenced by nothing once its native handle is passed: the GC may finalize it, freeing the native value, while
/// libtorch still reads it. Seen under load as <c>Unknown scalar type</c> in <c>THSTensor_ne_scalar</c>.
/// </summary>
/// <remarks>
/// Compiles the sources of DistTrain.Models and DistTrain.Training with Roslyn against the assemblies this test runs
/// with, and lists every user-defined conversion (implicit, or an explicit cast) to <c>TorchSharp.Scalar</c> or
/// <c>TorchSharp.torch.Tensor</c> by file and line. Allowed: the initializer of a <c>using</c> local (alive until the
/// end of its scope) and of a static or instance field (rooted for as long as its class or module).
/// </remarks>
public sealed class NativeTemporariesTests
{
    private static readonly string[] Projects = ["src/DistTrain.Models", "src/DistTrain.Training"];

    /// <summary>The global usings the SDK's ImplicitUsings gives every project.</summary>
    private const string ImplicitUsings = """
        global using global::System;
        global using global::System.Collections.Generic;
        global using global::System.IO;
        global using global::System.Linq;
        global using global::System.Net.Http;
        global using global::System.Threading;
        global using global::System.Threading.Tasks;
        """;

    /// <summary>The global usings the compiled projects declare themselves (<c>&lt;Using Include="…" /&gt;</c> in their csproj).</summary>
    private static string ProjectUsings() => string.Concat(Projects
        .Select(p => Path.Combine(ShippedFiles.Find(p), Path.GetFileName(p) + ".csproj"))
        .SelectMany(csproj => System.Xml.Linq.XDocument.Load(csproj).Descendants("Using"))
        .Select(u => $"global using global::{u.Attribute("Include")!.Value};\n")
        .Distinct());

    /// <summary>One compilation for every test of the class: it takes a few seconds.</summary>
    private static readonly Lazy<CSharpCompilation> Compiled = new(Compile);

    private static CSharpCompilation Compile()
    {
        var trees = Projects
            .SelectMany(p => Directory.EnumerateFiles(ShippedFiles.Find(p), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), new CSharpParseOptions(LanguageVersion.Preview), path: f))
            .Append(CSharpSyntaxTree.ParseText(ImplicitUsings + ProjectUsings(), new CSharpParseOptions(LanguageVersion.Preview)))
            .ToList();
        string[] compiledHere = ["DistTrain.Models.dll", "DistTrain.Training.dll", "DistTrain.Training.Tests.dll"];
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Where(path => !compiledHere.Contains(Path.GetFileName(path)))
            .Select(path => MetadataReference.CreateFromFile(path));
        return CSharpCompilation.Create("DistTrain.Training", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
    }

    /// <summary>
    /// TorchSharp's own methods that make a Scalar temporary inside them and drop it after the native call, directly or
    /// through the TorchSharp methods they call: <c>operator *(Tensor, double)</c> is <c>left.mul((Scalar)right)</c>, and
    /// <c>a + b</c> is <c>a.add(b, (Scalar)1)</c>. Found by reading the IL of every method of the assembly: a call to a
    /// Scalar conversion (<c>op_Implicit</c>, <c>ToScalar</c>) in a method that never calls <c>Scalar.Dispose</c> marks
    /// it, and marks spread to callers until nothing changes. Keyed like <see cref="Key(IMethodSymbol)"/>.
    /// </summary>
    private static readonly Lazy<HashSet<string>> ConvertingInside = new(() =>
    {
        var assembly = typeof(TorchSharp.Scalar).Assembly;
        const System.Reflection.BindingFlags all = System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic
            | System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.DeclaredOnly;
        var callees = new Dictionary<System.Reflection.MethodBase, List<System.Reflection.MethodBase>>();
        var marked = new HashSet<System.Reflection.MethodBase>();
        Type[] types;
        try { types = assembly.GetTypes(); } catch (System.Reflection.ReflectionTypeLoadException e) { types = [.. e.Types.OfType<Type>()]; }
        foreach (var type in types)
            foreach (var method in type.GetMethods(all).Cast<System.Reflection.MethodBase>().Concat(type.GetConstructors(all)))
            {
                byte[]? il;
                try { il = method.GetMethodBody()?.GetILAsByteArray(); } catch (Exception e) when (e is InvalidOperationException or BadImageFormatException) { continue; }
                if (il is null) continue;
                var calls = new List<System.Reflection.MethodBase>();
                for (int i = 0; i + 4 < il.Length; i++)
                {
                    if (il[i] is not (0x28 or 0x6F or 0x73)) continue;   // call, callvirt, newobj (also matches operand bytes: resolution filters)
                    try { if (method.Module.ResolveMethod(BitConverter.ToInt32(il, i + 1)) is { } callee) calls.Add(callee); }
                    catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException or MissingMethodException) { }
                }
                callees[method] = calls;
                bool makes = calls.Any(c => c is System.Reflection.MethodInfo { ReturnType: var r, Name: "op_Implicit" or "ToScalar" } && r == typeof(TorchSharp.Scalar));
                bool disposes = calls.Any(c => c.DeclaringType == typeof(TorchSharp.Scalar) && c.Name == "Dispose");
                if (makes && !disposes) marked.Add(method);
            }
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var (method, calls) in callees)
                if (!marked.Contains(method) && calls.Any(marked.Contains) && !calls.Any(c => c.DeclaringType == typeof(TorchSharp.Scalar) && c.Name == "Dispose"))
                    changed |= marked.Add(method);
        }
        return [.. marked.Where(m => m.Name is not ("op_Implicit" or "op_Explicit" or "ToScalar")).Select(m =>
            $"{Name(m.DeclaringType!)}.{m.Name}({string.Join(",", m.GetParameters().Select(p => Name(p.ParameterType)))})")];
    });

    private static string Name(Type t) => t.IsArray ? Name(t.GetElementType()!) + "[]"
        : t.IsGenericType ? $"{t.Namespace}.{t.Name[..t.Name.IndexOf('`')]}<{string.Join(",", t.GetGenericArguments().Select(Name))}>"
        : (t.FullName ?? t.Name).Replace('+', '.');

    private static readonly SymbolDisplayFormat Qualified = new(SymbolDisplayGlobalNamespaceStyle.Omitted,
        SymbolDisplayTypeQualificationStyle.NameAndContainingTypesAndNamespaces, SymbolDisplayGenericsOptions.IncludeTypeParameters);

    private static string Key(IMethodSymbol m) =>
        $"{m.ContainingType.ToDisplayString(Qualified)}.{m.MetadataName}({string.Join(",", m.Parameters.Select(p => p.Type.ToDisplayString(Qualified)))})";

    /// <summary>Every conversion into Scalar or Tensor whose result nothing keeps alive, as "file:line: code".</summary>
    public static IReadOnlyList<string> FindTemporaries(CSharpCompilation compilation)
    {
        var scalar = compilation.GetTypeByMetadataName("TorchSharp.Scalar")!;
        var tensor = compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor")!;
        var found = new List<string>();
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            string Where(SyntaxNode node) =>
                $"{Path.GetRelativePath(ShippedFiles.Find("src"), tree.FilePath)}:{tree.GetLineSpan(node.Span).StartLinePosition.Line + 1}";
            foreach (var call in tree.GetRoot().DescendantNodes().Where(n => n is InvocationExpressionSyntax or BinaryExpressionSyntax or AssignmentExpressionSyntax))
            {
                if (model.GetSymbolInfo(call).Symbol is IMethodSymbol { ContainingAssembly.Name: "TorchSharp" } callee && ConvertingInside.Value.Contains(Key(callee.OriginalDefinition)))
                    found.Add($"{Where(call)}: {Short(call)} → {callee.Name}, which makes a Scalar temporary inside TorchSharp");
            }
            foreach (var expression in tree.GetRoot().DescendantNodes().OfType<ExpressionSyntax>())
            {
                // `a.b` is converted as a whole; its name part would report the same conversion again.
                if (expression.Parent is MemberAccessExpressionSyntax access && access.Name == expression) continue;
                // A cast is an explicit conversion operation; any other expression may be converted implicitly where it is used.
                var method = expression is CastExpressionSyntax
                    ? (model.GetOperation(expression) as IConversionOperation)?.OperatorMethod
                    : model.GetConversion(expression) is { IsUserDefined: true } conversion ? conversion.MethodSymbol : null;
                if (method is null) continue;
                if (!SymbolEqualityComparer.Default.Equals(method.ReturnType, scalar) && !SymbolEqualityComparer.Default.Equals(method.ReturnType, tensor)) continue;
                if (KeptAlive(expression)) continue;
                found.Add($"{Where(expression)}: {Short(expression)} → {method.ReturnType.Name}");
            }
        }
        return found;
    }

    private static string Short(SyntaxNode node) => node.ToString() is var text && text.Length > 80 ? text[..80] + "…" : node.ToString();

    /// <summary>The initializer of a <c>using</c> local or of a field: something holds the value for longer than the call.</summary>
    private static bool KeptAlive(ExpressionSyntax expression)
    {
        var node = expression.Parent is CastExpressionSyntax or ParenthesizedExpressionSyntax ? expression.Parent : expression;
        if (node.Parent is not EqualsValueClauseSyntax { Parent: VariableDeclaratorSyntax { Parent: VariableDeclarationSyntax declaration } }) return false;
        return declaration.Parent is FieldDeclarationSyntax
            || declaration.Parent is LocalDeclarationStatementSyntax { UsingKeyword.RawKind: not 0 };
    }

    [Fact]
    public void The_sources_compile_here_so_the_search_sees_every_call()
    {
        var errors = Compiled.Value.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Take(10).ToList();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public void No_training_or_inference_path_passes_a_TorchSharp_temporary_to_native_code()
    {
        var found = FindTemporaries(Compiled.Value);
        Assert.True(found.Count == 0, $"{found.Count} Scalar/Tensor temporaries (keep each alive across the call: a `using var` " +
            $"local, a field, or a tensor operand):\n{string.Join("\n", found)}");
    }

    [Fact]
    public void The_search_finds_each_kind_of_temporary()
    {
        const string probe = """
            using TorchSharp;
            using static TorchSharp.torch;
            static class Probe
            {
                static readonly Scalar Half = 0.5;
                static void Run(Tensor ids, Tensor x, Tensor mask)
                {
                    using var pad = 0.ToScalar();
                    using Scalar one = 1;
                    var a = ids.ne(0);
                    var b = x * 0.5;
                    var c = x.masked_fill(mask, -1e9);
                    var d = x.clamp(min: 1e-6);
                    var e = ids.ne((Scalar)3);
                    var f = ids.ne(pad);
                    var g = x * Half;
                    Scalar h = 2.0;
                    var i = x + x;
                    var j = x.add(x, one);
                }
            }
            """;
        var compilation = Compiled.Value.AddSyntaxTrees(CSharpSyntaxTree.ParseText(probe, new CSharpParseOptions(LanguageVersion.Preview), path: ShippedFiles.Find("src") + "/Probe.cs"));
        var inProbe = FindTemporaries(compilation).Where(f => f.StartsWith("Probe.cs:", StringComparison.Ordinal)).ToList();
        Assert.Equal(["Probe.cs:10", "Probe.cs:11", "Probe.cs:12", "Probe.cs:13", "Probe.cs:14", "Probe.cs:17", "Probe.cs:18"],
            inProbe.Select(f => f[..f.IndexOf(':', 9)]).Order(StringComparer.Ordinal));
    }
}
