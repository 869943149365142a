/// English stop words: the 33-word list of Lucene's classic `EnglishAnalyzer` (also bm25s's
/// `"english"` list), short on purpose. Longer lists (NLTK's 179 words) drop words such as
/// "not", "no", "against", "after" that matter to claims like SciFact's; this list removes only
/// articles, auxiliaries and connectives that carry no topic.
public enum EnglishStopWords {
    /// The words, lowercase.
    public static let words: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
        "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they",
        "this", "to", "was", "will", "with",
    ]
}
