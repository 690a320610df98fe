using DistTrain.Data.Datasets;

namespace DistTrain.Training.Pipeline;

/// <summary>
/// Puts a data set's labels into a model's class order. A data file's label ids index its own training label set;
/// a model trained on another file (an evaluate or label stage reading new data) may order or hold them differently.
/// </summary>
public static class LabelMap
{
    /// <summary>For each data label id, the model's class id, or −1 when the model has no such class.</summary>
    public static int[] Of(IReadOnlyList<string> dataLabels, IReadOnlyList<string> modelClasses)
    {
        var index = modelClasses.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i, StringComparer.Ordinal);
        return dataLabels.Select(l => index.GetValueOrDefault(l, -1)).ToArray();
    }

    /// <summary>Sequence examples with their labels in the model's order; examples whose label the model lacks are left out.</summary>
    public static IIndexedDataset<ClassificationExample> Onto(IIndexedDataset<ClassificationExample> data, IReadOnlyList<string> dataLabels, IReadOnlyList<string> modelClasses)
    {
        if (dataLabels.SequenceEqual(modelClasses)) return data;
        var map = Of(dataLabels, modelClasses);
        var kept = Enumerable.Range(0, data.Count).Where(i => data[i].Label is var l && l >= 0 && map[l] >= 0).ToArray();
        return new Mapped(data, kept, map);
    }

    /// <summary>Tagged examples with tags in the model's order; a tag the model lacks takes no loss (<see cref="TokenClassificationExample.Ignore"/>).</summary>
    public static IIndexedDataset<TokenClassificationExample> OntoTags(IIndexedDataset<TokenClassificationExample> data, IReadOnlyList<string> dataTags, IReadOnlyList<string> modelTags)
    {
        if (dataTags.SequenceEqual(modelTags)) return data;
        var map = Of(dataTags, modelTags);
        return new MappedTags(data, map);
    }

    private sealed class Mapped(IIndexedDataset<ClassificationExample> inner, int[] kept, int[] map) : IIndexedDataset<ClassificationExample>
    {
        public int Count => kept.Length;
        public ClassificationExample this[int index]
        {
            get
            {
                var ex = inner[kept[index]];
                return ex with { Label = map[ex.Label] };
            }
        }
    }

    private sealed class MappedTags(IIndexedDataset<TokenClassificationExample> inner, int[] map) : IIndexedDataset<TokenClassificationExample>
    {
        public int Count => inner.Count;
        public TokenClassificationExample this[int index]
        {
            get
            {
                var ex = inner[index];
                var labels = ex.Labels.Select(l => l < 0 || l >= map.Length || map[l] < 0 ? TokenClassificationExample.Ignore : map[l]).ToArray();
                return ex with { Labels = labels };
            }
        }
    }
}
