"""Generated data, no download: the circles and squares of the default runs (shapes, a
data module), and two generators that write real on-disk layouts for the comparisons in
docs/text_to_image.md: flower_field (Oxford-102 layout, Reed-style captions) and scenes
(Flickr8k layout)."""
