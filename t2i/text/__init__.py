"""The one text pipeline (no torchtext): tokenise -> vocabulary -> gensim word vectors,
shared by Flickr and COCO captions and IMDB reviews."""
from t2i.text.tokenize import tokenize
from t2i.text.vocabulary import Vocabulary
from t2i.text.word2vec import WordVectors

__all__ = ["tokenize", "Vocabulary", "WordVectors"]
