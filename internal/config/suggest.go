package config

// Nearest returns the candidate closest to word by edit distance, if it is
// close enough to be a likely misspelling of it: at most two edits, and
// fewer than a third of the word's length plus one (so that short words do
// not match everything). ok is false when word is itself a candidate or
// nothing is close.
func Nearest(word string, candidates []string) (nearest string, ok bool) {
	best := -1
	for _, c := range candidates {
		if c == word {
			return "", false
		}
		d := editDistance(word, c)
		if d <= 2 && d <= len(word)/3+1 && (best < 0 || d < best) {
			best, nearest = d, c
		}
	}
	return nearest, best >= 0
}

// DidYouMean is "; did you mean X?" for the nearest candidate, or "".
func DidYouMean(word string, candidates []string) string {
	if n, ok := Nearest(word, candidates); ok {
		return "; did you mean " + n + "?"
	}
	return ""
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment) of a and b, byte-wise: a swap of two neighbours counts once.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
